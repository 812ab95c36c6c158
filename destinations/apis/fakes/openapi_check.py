"""Checks a request a fake received against the vendor's official OpenAPI description.

The fakes answer what they are built to answer; this is what keeps our clients honest about
the rest (a required header, a number sent as a string, a read-only field written). It uses
openapi-core as ``../shared/specs/README.md`` prescribes: the description itself is not
validated (Xero's has 23 booleans whose default is the string "false"), requests are
checked with ``iter_errors`` (``unmarshal_request`` trips on those defaults), and the YAML
is read with a safe loader that leaves timestamps as strings. Building one description
takes about 1.5 s (Xero's YAML is ~1 MB), so each is built once per process.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from pathlib import Path

import yaml


class _NoTimestampLoader(yaml.SafeLoader):
    """A safe loader that keeps ``2019-03-14`` a string, as JSON clients send it."""


_NoTimestampLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_openapi(path: Path):
    """The openapi-core ``OpenAPI`` object for one description file, built once per process."""
    return _load(Path(path).resolve())


@functools.cache
def _load(path: Path):
    from openapi_core import OpenAPI
    from openapi_core.configurations import Config

    with open(path, encoding="utf-8") as description:
        spec = yaml.load(description, Loader=_NoTimestampLoader)  # noqa: S506 - a SafeLoader subclass
    return OpenAPI.from_dict(spec, config=Config(spec_validator_cls=None))


@dataclass
class SpecRequest:
    """A received request as openapi-core reads it (its ``Request`` protocol)."""

    host_url: str  # the description's server, e.g. https://api.xero.com
    path: str  # the path under that host, e.g. /api.xro/2.0/ManualJournals
    method: str
    query: list[tuple[str, str]]
    headers: list[tuple[str, str]]
    body: bytes
    content_type: str

    def __post_init__(self) -> None:
        from openapi_core.datatypes import RequestParameters
        from werkzeug.datastructures import Headers, ImmutableMultiDict

        self.method = self.method.lower()
        self.parameters = RequestParameters(query=ImmutableMultiDict(self.query), header=Headers(self.headers),
                                            cookie=ImmutableMultiDict())


def request_errors(api, request: SpecRequest) -> list[str]:
    """What is wrong with ``request`` by the description, one readable message per problem."""
    with warnings.catch_warnings():
        # openapi-core cannot check oauth2 security schemes and warns on every request; the
        # fakes check the bearer token themselves.
        warnings.filterwarnings("ignore", "Unsupported scheme type", UserWarning)
        return [_describe(error) for error in api.request_validator.iter_errors(request)]


def _describe(error: Exception) -> str:
    """openapi-core's message, with the schema errors (and where they are) that caused it."""
    cause = error.__cause__
    schema_errors = getattr(cause, "schema_errors", None) or []
    details = []
    for schema_error in schema_errors:
        where = "/".join(str(part) for part in schema_error.absolute_path)
        details.append(f"{where}: {schema_error.message}" if where else schema_error.message)
    if not details and cause is not None:
        details.append(str(cause))
    summary = str(error).split(":", 1)[0] if details else str(error)
    return f"{summary}: {'; '.join(details)}" if details else summary
