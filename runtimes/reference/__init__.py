"""The ``reference`` runtime: evaluates a built network layer by layer with torch ops.

TensorRT-RTX engines cannot run on every machine (not on CPUs, not on an H200), yet every
numeric check in plugtrt needs a result. This runtime computes one from the network TensorRT
built, read back into a ``NetworkSnapshot``, on whatever device the inputs live on, and checks
each layer's shape and dtype against TensorRT's own inference.
"""
from plugtrt.runtimes.reference.evaluator import ReferenceProgram, evaluate

__all__ = ["ReferenceProgram", "evaluate"]
