"""The xdist half of the property-coverage check (tests/conftest.py): each worker's records
travel to the controller as plain data and merge into the whole session's."""
from __future__ import annotations

import execnet

from tests.conftest import PropertyCoverage


def test_worker_records_travel_as_plain_data_and_merge_into_the_sessions():
    first = PropertyCoverage(converters={"builtin.relu": {"tests/converters/test_activation.py::a"}},
                             judged_here=True)
    second = PropertyCoverage(converters={"builtin.relu": {"tests/converters/test_activation.py::b"},
                                          "builtin.add.tensor": {"tests/converters/test_elementwise.py::c"}},
                              narrowed=["x deselected"])
    controller = PropertyCoverage()
    for worker in (first, second):
        controller.merge(execnet.loads(execnet.dumps(worker.to_message())))  # as xdist carries it
    assert controller.converters == {
        "builtin.relu": {"tests/converters/test_activation.py::a", "tests/converters/test_activation.py::b"},
        "builtin.add.tensor": {"tests/converters/test_elementwise.py::c"}}
    assert controller.judged_here and controller.narrowed == ["x deselected"]
