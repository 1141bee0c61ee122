"""placeholder"""
from plugtrt.hookspecs import hookimpl


@hookimpl
def plugtrt_converters():
    yield from ()
