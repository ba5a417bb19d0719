"""Checks on every value an endpoint takes, before gradio or the handler touches it.

Gradio's own components let a wrong type through to the handler, or fail inside their
preprocessing with an empty error for the user and a traceback in the server log (text or null
where a number goes, NaN, a list for a file). :func:`fields` makes the input components of an
event (gr.Audio/File/Image, Textbox, Number, Slider, Dropdown, Checkbox) refuse such a value first,
with a gr.Error that names the field and says what it accepts, from the component's own settings
(minimum, maximum, step, precision, choices, max_length); nothing is logged and the next request
is served as usual. Wire every event through it::

    steps = gr.Slider(1, 100, step=1, label="Steps")
    btn.click(generate, app_inputs.fields(generate, [prompt, steps]), out, api_name="generate")

A field is named by its API parameter, with the UI label beside it when they differ:
"Variations (num_images) must be a whole number from 1 to 4; got 9".
"""

from __future__ import annotations

import functools
import inspect
import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import gradio as gr
from gradio.data_classes import FileData
from gradio.exceptions import InvalidPathError

_SHOWN_CHARS = 80  # of a refused value quoted back


def refuse(message: str) -> gr.Error:
    """A gr.Error for input the user can fix: the message is all they and the log need."""
    return gr.Error(message, print_exception=False)


def show(value: Any) -> str:
    """A refused value as the client sent it (JSON: null, "text", [1]), cut short."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


def _plain(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def check_number(
    field: str,
    value: Any,
    minimum: float,
    maximum: float,
    *,
    whole: bool = False,
    multiple: int = 1,
    optional: bool = False,
) -> int | float | None:
    """``value`` as an int (``whole``) or float in [minimum, maximum], else a refusal.

    Refuses text, lists, booleans, null (unless ``optional``), NaN and infinities, fractions where
    a whole number goes (7.0 is taken as 7) and whole numbers off the ``multiple`` grid (counted
    from ``minimum``).
    """
    kind = "a whole number" if whole else "a number"
    if multiple > 1:
        kind = f"a multiple of {multiple}"
    rule = f"{kind} from {_plain(minimum)} to {_plain(maximum)}"
    if value is None:
        if optional:
            return None
        raise refuse(f"{field} must be {rule}; got null")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise refuse(f"{field} must be {rule}; got {show(value)} ({type(value).__name__})")
    if not math.isfinite(value):
        raise refuse(f"{field} must be {rule}; got {value} (not a finite number)")
    if whole or multiple > 1:
        if not float(value).is_integer():
            raise refuse(f"{field} must be {rule}; got {value} (not a whole number)")
        value = int(value)
    if not minimum <= value <= maximum:
        raise refuse(f"{field} must be {rule}; got {_plain(value)}")
    if multiple > 1 and (value - minimum) % multiple:
        raise refuse(f"{field} must be {rule}; got {value}")
    return value


def check_text(field: str, value: Any, max_chars: int | None = None) -> str:
    """``value`` if it is text of at most ``max_chars`` characters, else a refusal."""
    if not isinstance(value, str):
        got = "null" if value is None else f"{show(value)} ({type(value).__name__})"
        raise refuse(f"{field} must be text; got {got}")
    if max_chars is not None and len(value.strip()) > max_chars:
        raise refuse(
            f"The {field} is {len(value.strip()):,} characters long; keep it under {max_chars}."
        )
    return value


def check_choice(field: str, value: Any, choices: Sequence[Any]) -> Any:
    """``value`` if it is one of ``choices``, else a refusal listing them."""
    if isinstance(value, bool) or value not in choices or isinstance(value, list | dict):
        listed = ", ".join(show(c) for c in choices)
        raise refuse(f"{field} must be one of {listed}; got {show(value)}")
    return value


def check_flag(field: str, value: Any) -> bool:
    """``value`` if it is true or false (not 1, "yes" or null), else a refusal."""
    if not isinstance(value, bool):
        raise refuse(f"{field} must be true or false; got {show(value)}")
    return value


def field_name(component: gr.components.Component) -> str:
    """How messages name a component: its API parameter, with the UI label when they differ."""
    name, label = getattr(component, "api_field", None), getattr(component, "label", None)
    if not name:
        return label or "this field"
    if label and name.replace("_", " ") not in label.lower():
        return f"{label} ({name})"  # "Variations (num_images)"
    return name


def _check_slider(component: gr.Slider, payload: Any):
    step, low = component.step, component.minimum
    whole = float(step).is_integer() and float(low).is_integer()
    multiple = int(step) if whole and step > 1 else 1  # width/height: multiples of 8
    return check_number(
        field_name(component), payload, low, component.maximum, whole=whole, multiple=multiple
    )


def _check_number(component: gr.Number, payload: Any):
    low = -math.inf if component.minimum is None else component.minimum
    high = math.inf if component.maximum is None else component.maximum
    # null is what the UI sends for a cleared field; the handler decides whether that is fine
    whole = component.precision == 0
    return check_number(field_name(component), payload, low, high, whole=whole, optional=True)


def _check_textbox(component: gr.Textbox, payload: Any):
    return check_text(field_name(component), payload, component.max_length)


def _check_dropdown(component: gr.Dropdown, payload: Any):
    return check_choice(field_name(component), payload, [v for _, v in component.choices])


def _check_checkbox(component: gr.Checkbox, payload: Any):
    return check_flag(field_name(component), payload)


_CHECKS = (
    (gr.Slider, _check_slider),
    (gr.Number, _check_number),
    (gr.Textbox, _check_textbox),
    (gr.Dropdown, _check_dropdown),
    (gr.Checkbox, _check_checkbox),
)


@functools.cache
def _file_model(field: str) -> type[FileData]:
    """FileData that refuses a payload that is not a file with a message naming ``field``
    (gradio validates file payloads before any preprocess runs, with a traceback)."""

    def model_validate(cls, obj, *args, **kwargs):
        if not isinstance(obj, dict) or not isinstance(obj.get("path"), str):
            raise refuse(
                f"{field} must be an uploaded file (in gradio_client: handle_file(path)); "
                f"got {show(obj)}"
            )
        try:
            return FileData.model_validate(obj, *args, **kwargs)
        except ValueError as e:  # pydantic's ValidationError: a malformed file object
            raise refuse(f"{field} is not a valid file object: {show(obj)}") from e

    # built with type(), not a class statement: gradio writes .pyi stubs beside the source of
    # classes it sees defined; the same name keeps the schema clients recognise files by
    return type("FileData", (FileData,), {"model_validate": classmethod(model_validate)})


def check_inputs(component: gr.components.Component, name: str) -> gr.components.Component:
    """Make ``component`` check each value sent for it (as field ``name``) before gradio's own
    preprocessing; returns it. Plain gradio components, checked per instance (subclasses would
    make gradio write .pyi files next to this module at import)."""
    component.api_field = name
    if isinstance(component, gr.Audio | gr.File | gr.Image):
        component.data_model = _file_model(field_name(component))
        return component
    for kind, check in _CHECKS:
        if isinstance(component, kind):
            preprocess = type(component).preprocess.__get__(component)

            def checked(payload, check=check, preprocess=preprocess, component=component):
                return preprocess(check(component, payload))

            component.preprocess = checked
            return component
    raise TypeError(f"no input check for {type(component).__name__} (field {name!r})")


def guard_requests(demo: gr.Blocks) -> gr.Blocks:
    """Make ``demo`` answer two malformed requests gradio itself fails on with an empty error
    and a traceback in the log: fewer values than the endpoint takes (named in the message), and
    a file path the client did not upload (gradio's InvalidPathError). Returns ``demo``."""
    check = demo.validate_inputs
    preprocess_data = demo.preprocess_data

    def validate_inputs(block_fn, inputs):
        wanted = block_fn.inputs
        if len(inputs) < len(wanted):
            names = ", ".join(getattr(c, "api_field", None) or str(c.label) for c in wanted)
            raise refuse(
                f"/{block_fn.api_name or block_fn.name} takes {len(wanted)} values ({names}); "
                f"got {len(inputs)}"
            )
        return check(block_fn, inputs)

    async def checked_preprocess_data(block_fn, inputs, state, explicit_call=False):
        try:
            return await preprocess_data(block_fn, inputs, state, explicit_call)
        except InvalidPathError as e:  # e.g. {"path": "/etc/passwd"}: refused, and said why
            raise refuse(f"/{block_fn.api_name}: {e}") from e

    demo.validate_inputs = validate_inputs
    demo.preprocess_data = checked_preprocess_data
    return demo


def fields(fn: Callable, inputs: Sequence[gr.components.Component]) -> list:
    """Name each input component after the parameter of ``fn`` it fills (in order), so refusals
    name the field as API clients know it; returns ``inputs`` as a list, for ``.click``."""
    names = list(inspect.signature(fn).parameters)
    if len(inputs) > len(names):
        raise ValueError(f"{fn.__name__} takes {len(names)} inputs, wired to {len(inputs)}")
    for name, component in zip(names, inputs, strict=False):
        check_inputs(component, name)
    return list(inputs)
