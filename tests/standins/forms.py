"""Request bodies as the services read them: urlencoded forms and multipart/form-data."""

from __future__ import annotations

import email.policy
from dataclasses import dataclass
from email.parser import BytesParser
from urllib.parse import parse_qs


@dataclass(frozen=True)
class Part:
    """One part of a multipart/form-data body."""

    name: str
    filename: str | None
    content_type: str
    data: bytes

    def text(self) -> str:
        """Return the part's data as UTF-8 text."""
        return self.data.decode("utf-8")


def parse_multipart(content_type: str, body: bytes) -> list[Part]:
    """Return the parts of a multipart/form-data body; raise ValueError if it is not one."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise ValueError("not a multipart body")
    parts = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        parts.append(
            Part(
                name=name,
                filename=part.get_filename(),
                content_type=part.get_content_type(),
                data=payload if isinstance(payload, bytes) else b"",
            )
        )
    return parts


def parse_form(
    content_type: str, body: bytes
) -> tuple[dict[str, list[str]], dict[str, list[Part]]]:
    """Return (fields, files) of a urlencoded or multipart body; other bodies have neither.

    A multipart part with a filename is a file; one without is a field.
    """
    media_type = content_type.split(";", 1)[0].strip().lower()
    fields: dict[str, list[str]] = {}
    files: dict[str, list[Part]] = {}
    if media_type == "application/x-www-form-urlencoded":
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    elif media_type == "multipart/form-data":
        for part in parse_multipart(content_type, body):
            if part.filename is None:
                fields.setdefault(part.name, []).append(part.text())
            else:
                files.setdefault(part.name, []).append(part)
    return fields, files
