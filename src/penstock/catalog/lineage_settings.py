"""Project settings of where OpenLineage events go: `lineage:` (observe/lineage.py sends them).

```yaml
lineage:                       # all optional; by default events are appended to a file
  transport: file              # file (default) | http | none
  file: .penstock/openlineage.jsonl   # file: one JSON event per line, relative to the project
  url: http://localhost:5000   # http: Marquez or any OpenLineage backend
  endpoint: api/v1/lineage     # http: the path events are POSTed to
  api_key: ${env:OPENLINEAGE_API_KEY}  # http: sent as a bearer token (by reference: redacted)
  timeout: 5                   # http: seconds per request
  namespace: shop              # the jobs' namespace (default: the project name)
```

Whatever the transport, the lineage of every step is also recorded in the metadata store's
`lineage` table (`penstock lineage OBJECT`); `transport: none` only stops the events.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from penstock.catalog.base import Model

LineageTransport = Literal["file", "http", "none"]
DEFAULT_LINEAGE_FILE = ".penstock/openlineage.jsonl"


class LineageSettings(Model):
    """Where the OpenLineage events of a run go (see the module docstring)."""

    transport: LineageTransport = "file"
    file: str = DEFAULT_LINEAGE_FILE
    url: str | None = None
    endpoint: str = "api/v1/lineage"
    api_key: str | None = None
    timeout: float = Field(default=5.0, gt=0, le=300)
    namespace: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _check_transport(self) -> LineageSettings:
        if self.transport == "http":
            if not self.url:
                raise ValueError("transport: http needs url: (say http://localhost:5000)")
            if not self.url.startswith(("http://", "https://")):
                raise ValueError(f"url must start with http:// or https://, got '{self.url}'")
        elif self.url is not None or self.api_key is not None:
            raise ValueError(
                f"url and api_key are for transport: http (transport is {self.transport})"
            )
        return self
