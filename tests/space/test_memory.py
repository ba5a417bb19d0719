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


def test_bounded_handlers_run_at_most_their_slots_at_once():
    import threading

    slots = threading.BoundedSemaphore(2)
    inside, most, lock = [], [0], threading.Lock()
    release = threading.Event()
    two_in = threading.Event()

    def export(cover, size=3000):
        with lock:
            inside.append(cover)
            most[0] = max(most[0], len(inside))
            if len(inside) == 2:
                two_in.set()
        release.wait(30)
        with lock:
            inside.remove(cover)
        return cover

    wrapped = memory.bounded(export, slots)
    assert inspect.signature(wrapped) == inspect.signature(export)
    workers = [threading.Thread(target=wrapped, args=(i,)) for i in range(5)]
    for w in workers:
        w.start()
    assert two_in.wait(30)
    with lock:
        assert len(inside) == 2  # the other three wait for a slot
    release.set()
    for w in workers:
        w.join(30)
    assert most[0] == 2 and not inside
    assert memory.IMAGE_SLOTS * memory.PEAK_IMAGE_REQUEST_MB < 16_000 - 5_000
