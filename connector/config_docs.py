"""Generate ``docs/configuration.md`` from the settings' field descriptions.

``python -m connector.config_docs > docs/configuration.md`` rewrites it; a unit test fails when
the committed file differs from what this prints.
"""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Iterator
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from connector.config import ENV_PREFIX, Settings

HEADER = """# Configuration reference

Generated from the settings' descriptions by `python -m connector.config_docs`; do not edit by
hand. The configuration is one YAML file (`gcal-kafka run --config FILE`). Any setting can be
overridden by an environment variable: `GCAL_KAFKA_` plus the path in upper case with `__`
between levels, e.g. `GCAL_KAFKA_METRICS__PORT=9000`; lists and mappings take JSON, e.g.
`GCAL_KAFKA_KAFKA='{"bootstrap.servers": "broker:9092"}'`. Unknown keys are errors, and
`gcal-kafka validate --config FILE` lists every problem at once (exit code 2).
"""


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if annotation is SecretStr:
        return "secret string"
    if origin is Literal:
        return " \\| ".join(f"`{a}`" for a in get_args(annotation))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(annotation) if a is not type(None))
    if origin is tuple:
        return f"list of {_type_name(get_args(annotation)[0])}"
    if origin is dict:
        return "mapping"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value: Any = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return ""
    if isinstance(value, tuple):
        value = list(value)
    return f"`{json.dumps(value, default=str)}`"


def _rows(model: type[BaseModel], prefix: str) -> Iterator[str]:
    nested: list[tuple[str, type[BaseModel]]] = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        env = "" if "[]" in path else f"`{ENV_PREFIX}{path.replace('.', '__').upper()}`"
        desc = (field.description or "").replace("|", "\\|")
        yield f"| `{path}` | {_type_name(field.annotation)} | {_default(field)} | {desc} | {env} |"
        sub = _model_of(field.annotation)
        if sub is not None:
            is_list = get_origin(field.annotation) is tuple
            nested.append((f"{path}[]" if is_list else path, sub))
    for path, sub in nested:
        yield from _section(sub, f"{path}.")


def _section(model: type[BaseModel], prefix: str) -> Iterator[str]:
    title = prefix.rstrip(".") or "top level"
    yield ""
    yield f"## `{title}`" if prefix else f"## {title}"
    yield ""
    doc = (model.__doc__ or "").strip()
    if doc and prefix:
        yield doc
        yield ""
    yield "| setting | type | default | description | environment |"
    yield "|---|---|---|---|---|"
    yield from _rows(model, prefix)


def render() -> str:
    lines = [HEADER.rstrip("\n")]
    lines.extend(_section(Settings, ""))
    return "\n".join(lines) + "\n"


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
