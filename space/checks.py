"""The one way the page checks what clients send, for every event it serves: the six named
endpoints (/analyze, /generate, /letter, /export, /embed, /kit) and the page's own helper events.

Each input component has a rule, ``rule(field, payload) -> value``, run on the value as the client
sent it, before gradio touches it: it returns the value to pass on, or raises :func:`refuse` with
a message that names the field and says what it accepts. A component's rule comes from its own
settings (Slider, Number: range, step, precision; Textbox: max_length; Dropdown: choices;
Checkbox; Audio, File, Image: an uploaded file), unless :func:`rule` gives it another.
:func:`guard` installs the rules on a built page, naming each field after the handler parameter
it fills, with the UI label beside it when they differ::

    Variations (num_images) must be a whole number from 1 to 4; got 9

Nothing is logged for a refusal and the next request is served as usual. A public endpoint with
an input that no rule covers stops the app at start-up.

Why a request guard and not gradio's own ``validator=`` / ``gr.validate`` (gradio 6.31), which
cannot express these checks:

* the validator runs after gradio's preprocessing, so it never sees what was sent: a list where
  text goes has already become the text "['a']" (Textbox), and a payload gradio cannot
  preprocess (a number where a file goes) fails before the validator with an empty error and a
  traceback in the server log;
* its refusal is an HTTP 422 to the request that joins the queue, which gradio_client raises as
  ValidationError, where every endpoint here answers a bad value with an error event (AppError);
* it preprocesses every input a second time, so each upload would be copied and read twice.

The one place gradio leaves for checks before its own is Blocks.preprocess_data; the guard also
answers there two malformed requests gradio fails on with a traceback: fewer values than the
endpoint takes, and a file path the client did not upload.
"""

from __future__ import annotations

import inspect
import json
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import gradio as gr
from gradio.data_classes import FileData
from gradio.exceptions import InvalidPathError

Rule = Callable[[str, Any], Any]  # (field name, the value as sent) -> the value passed on

_SHOWN_CHARS = 80  # of a refused value quoted back
_URL = re.compile(r"^\s*([a-z][a-z0-9+.-]*://|data:)", re.I)  # a file path that is a URL


def refuse(message: str) -> gr.Error:
    """The app's one error for a request it cannot serve for a known reason (bad input, no model,
    an unreadable upload): the message is all the user and the server log need, no traceback."""
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
    """``value`` if it is text of at most ``max_chars`` characters (spaces around it not
    counted), else a refusal."""
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
    if isinstance(value, bool) or isinstance(value, list | dict) or value not in choices:
        listed = ", ".join(show(c) for c in choices)
        raise refuse(f"{field} must be one of {listed}; got {show(value)}")
    return value


def check_flag(field: str, value: Any) -> bool:
    """``value`` if it is true or false (not 1, "yes" or null), else a refusal."""
    if not isinstance(value, bool):
        raise refuse(f"{field} must be true or false; got {show(value)}")
    return value


def check_file(field: str, value: Any) -> Any:
    """``value`` if it is null (the handler says what is missing) or a file object as gradio
    clients send one, else a refusal (gradio's own check would fail with a traceback)."""
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("path"), str):
        raise refuse(
            f"{field} must be an uploaded file (in gradio_client: handle_file(path)); "
            f"got {show(value)}"
        )
    if _URL.match(value["path"]):  # gradio would fetch it, on the visitor's behalf
        raise refuse(
            f"{field}: a URL is not taken, only an uploaded file (in gradio_client: "
            f"handle_file(path) of a local file); got {show(value['path'])}"
        )
    try:  # the check gradio runs next, here with a message instead of a traceback
        FileData.model_validate(value, context={"validate_meta": True})
    except ValueError as e:  # pydantic's ValidationError: a malformed file object
        raise refuse(f"{field} is not a valid file object: {show(value)}") from e
    return value


def _slider_rule(component: gr.Slider) -> Rule:
    step, low, high = component.step, component.minimum, component.maximum
    whole = float(step).is_integer() and float(low).is_integer()
    multiple = int(step) if whole and step > 1 else 1  # width/height: multiples of 8
    return lambda field, value: check_number(
        field, value, low, high, whole=whole, multiple=multiple
    )


def _number_rule(component: gr.Number) -> Rule:
    low = -math.inf if component.minimum is None else component.minimum
    high = math.inf if component.maximum is None else component.maximum
    whole = component.precision == 0
    # null is what the UI sends for a cleared field; the handler decides whether that is fine
    return lambda field, value: check_number(field, value, low, high, whole=whole, optional=True)


def default_rule(component: gr.components.Component) -> Rule | None:
    """The rule a component's own settings make (see the module docstring); None for kinds the
    page never takes from clients (a Gallery, read back by the page's own helper events)."""
    if isinstance(component, gr.Audio | gr.File | gr.Image):
        return check_file
    if isinstance(component, gr.Slider):
        return _slider_rule(component)
    if isinstance(component, gr.Number):
        return _number_rule(component)
    if isinstance(component, gr.Textbox):
        return lambda field, value: check_text(field, value, component.max_length)
    if isinstance(component, gr.Dropdown):
        choices = [value for _, value in component.choices]
        return lambda field, value: check_choice(field, value, choices)
    if isinstance(component, gr.Checkbox):
        return check_flag
    return None


def rule(component: gr.components.Component, check: Rule) -> gr.components.Component:
    """Give ``component`` its own rule instead of the one its settings make (a field whose
    values follow the library's rules, a Dropdown that also takes typed values); returns it."""
    component.input_rule = check
    return component


def uploaded_path(component: gr.Image | gr.File) -> gr.Image | gr.File:
    """Hand ``component``'s upload to the handler as the path of the file the client sent,
    undecoded and uncopied (a single-file Image or File). Returns ``component``.

    gradio's own preprocessing does more, and worse, per request: an Image decodes the whole
    upload and converts it with a plain PIL ``convert`` (a 16-bit greyscale PNG turns white,
    transparency black, a 30000 x 30000 PNG is decoded before any budget is checked) and saves a
    new file; a File (gradio 6.31) leaves an empty temp file in the cache root that nothing ever
    deletes, one per request. The handlers read the path with the library instead (images with
    :func:`albumcover.images.read_image`, as the CLI does). The instance's method is replaced,
    not subclassed: gradio writes a .pyi beside any module that subclasses a component."""

    def preprocess(payload):
        return None if payload is None else payload.path

    component.preprocess = preprocess
    return component


def field_name(component: gr.components.Component, name: str | None) -> str:
    """How messages name a field: its API parameter ``name``, with the component's UI label
    (less any note in brackets) beside it when neither names the other."""
    label = re.sub(r"\s*\(.*?\)", "", str(component.label or "")).strip()
    if not name:
        return label or "this field"
    spoken = name.replace("_", " ")
    if label and spoken not in label.lower() and label.lower() not in spoken:
        return f"{label} ({name})"  # "Variations (num_images)", "Song (audio)"
    return name


def _plan(block_fn) -> list[tuple[str, str, Rule | None]]:
    """(parameter, field name, rule) for each input of one event, in order."""
    params = list(inspect.signature(block_fn.fn).parameters) if block_fn.fn else []
    plan = []
    for i, component in enumerate(block_fn.inputs):
        name = params[i] if i < len(params) else ""
        check = getattr(component, "input_rule", None) or default_rule(component)
        if check is None and block_fn.api_visibility != "private":
            raise TypeError(
                f"/{block_fn.api_name}: no input rule for {type(component).__name__} ({name!r})"
            )
        plan.append((name, field_name(component, name), check))
    return plan


def guard(demo: gr.Blocks) -> gr.Blocks:
    """Check every value of every event of ``demo`` by its rule before gradio preprocesses it,
    and refuse too few values or a file path the client did not upload (see the module
    docstring). Call once all events are wired; returns ``demo``."""
    plans = {block_fn._id: _plan(block_fn) for block_fn in demo.fns.values()}
    preprocess_data = demo.preprocess_data

    async def checked_preprocess_data(block_fn, inputs, state, explicit_call=False):
        plan = plans.get(block_fn._id, [])
        endpoint = f"/{block_fn.api_name or block_fn.name}"
        if len(inputs) < len(plan):
            names = ", ".join(name for name, _, _ in plan)
            raise refuse(f"{endpoint} takes {len(plan)} values ({names}); got {len(inputs)}")
        checked = [
            value if check is None else check(field, value)
            for (_, field, check), value in zip(plan, inputs, strict=False)
        ]
        try:
            return await preprocess_data(
                block_fn, checked + list(inputs[len(plan) :]), state, explicit_call
            )
        except InvalidPathError as e:  # e.g. {"path": "/etc/passwd"}: refused, and said why
            raise refuse(f"{endpoint}: {e}") from e

    demo.preprocess_data = checked_preprocess_data
    return demo
