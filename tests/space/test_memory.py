"""space.memory: the allocator settings the app applies to keep its memory bounded."""

import inspect
import platform

import pytest

from space import memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_glibc_calls_take_effect():
    assert memory.limit_malloc_arenas(2)
    memory.release_freed_memory()  # returns nothing; must not crash


def test_release_after_keeps_the_handler_signature_and_errors():
    def generate(prompt, steps=25, progress=None):
        if not prompt:
            raise ValueError("empty")
        return prompt * steps

    wrapped = memory.release_after(generate)
    # gradio reads parameter names and defaults (API docs, gr.Progress) from the signature
    assert inspect.signature(wrapped) == inspect.signature(generate)
    assert wrapped("a", steps=2) == "aa"
    with pytest.raises(ValueError, match="empty"):
        wrapped("")


def test_the_idle_release_collects_cyclic_garbage_first():
    import gc
    import weakref

    class Request:  # a request's objects that refer to each other (e.g. via a traceback)
        pass

    gc.disable()  # only the release may collect here
    try:
        request = Request()
        request.self = request
        request.buffer = bytearray(8 << 20)
        gone = weakref.ref(request)
        del request
        assert gone() is not None  # a cycle: reference counting alone never frees it
        memory.collect_and_release()
        assert gone() is None
    finally:
        gc.enable()
