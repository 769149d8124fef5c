"""Form definitions built from parts, the answers they accept, and the signed document.

A form is a list of parts. Kinds: ``identity`` (the auto-filled block: name, address, birthdate,
gender from the verified claims, read-only), ``text``, ``date`` (``YYYY-MM-DD``) and ``choice``
(one of the listed options). Answers for the identity block are never read from the browser.

The document a resident signs is canonical JSON (keys sorted, no insignificant whitespace,
UTF-8, non-ASCII kept): the form id and title, the submission id, the identity from the
server-side session and the answers. Its SHA-256 is what the card signs (inside the CMS signed
attributes).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

__all__ = [
    "IDENTITY_ITEMS",
    "KINDS",
    "FormDefinition",
    "FormError",
    "Part",
    "canonical_document",
    "document_digest",
    "health_check_form",
]

KINDS: Final = ("identity", "text", "date", "choice")
IDENTITY_ITEMS: Final = ("name", "address", "birthdate", "gender")
MAX_TEXT: Final = 200
_KEY = re.compile(r"[a-z][a-z0-9_]{0,39}")


class FormError(ValueError):
    """A form definition or an answer is not acceptable (``field`` names the part)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Part:
    key: str
    kind: str
    label_ja: str
    label_en: str
    required: bool = True
    options: tuple[str, ...] = ()

    def label(self, lang: str) -> str:
        return self.label_en if lang == "en" and self.label_en else self.label_ja

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind,
            "label_ja": self.label_ja,
            "label_en": self.label_en,
            "required": self.required,
            "options": list(self.options),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Part:
        part = cls(
            key=str(data.get("key", "")),
            kind=str(data.get("kind", "")),
            label_ja=str(data.get("label_ja", "")).strip(),
            label_en=str(data.get("label_en", "")).strip(),
            required=bool(data.get("required", True)),
            options=tuple(str(o).strip() for o in data.get("options") or () if str(o).strip()),
        )
        part.check()
        return part

    def check(self) -> None:
        if not _KEY.fullmatch(self.key):
            raise FormError("part key must be a-z, 0-9, _ (start with a letter)", self.key)
        if self.kind not in KINDS:
            raise FormError(f"part kind must be one of {', '.join(KINDS)}", self.key)
        if not self.label_ja or len(self.label_ja) > MAX_TEXT:
            raise FormError("a part needs a Japanese label", self.key)
        if self.kind == "choice" and len(self.options) < 2:
            raise FormError("a choice needs at least two options", self.key)

    def answer(self, raw: str | None) -> str:
        """The accepted answer for this part from the posted value (identity: never)."""
        if self.kind == "identity":
            raise FormError("the identity block is not answered", self.key)
        value = (raw or "").strip()
        if not value:
            if self.required:
                raise FormError("required", self.key)
            return ""
        if len(value) > MAX_TEXT or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
            raise FormError("too long or holds control characters", self.key)
        if self.kind == "date":
            try:
                value = date.fromisoformat(value).isoformat()
            except ValueError as exc:
                raise FormError("not a date (YYYY-MM-DD)", self.key) from exc
        if self.kind == "choice" and value not in self.options:
            raise FormError("not one of the options", self.key)
        return value


@dataclass(frozen=True)
class FormDefinition:
    form_id: str
    title_ja: str
    title_en: str
    parts: tuple[Part, ...]

    def title(self, lang: str) -> str:
        return self.title_en if lang == "en" and self.title_en else self.title_ja

    def to_json(self) -> dict[str, Any]:
        return {
            "form_id": self.form_id,
            "title_ja": self.title_ja,
            "title_en": self.title_en,
            "parts": [p.to_json() for p in self.parts],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FormDefinition:
        parts = tuple(Part.from_json(p) for p in data.get("parts") or ())
        form = cls(
            form_id=str(data.get("form_id", "")),
            title_ja=str(data.get("title_ja", "")).strip(),
            title_en=str(data.get("title_en", "")).strip(),
            parts=parts,
        )
        form.check()
        return form

    def check(self) -> None:
        if not _KEY.fullmatch(self.form_id.replace("-", "_")):
            raise FormError("form id must be a-z, 0-9, - and _", "form_id")
        if not self.title_ja or len(self.title_ja) > MAX_TEXT:
            raise FormError("a form needs a Japanese title", "title_ja")
        keys = [p.key for p in self.parts]
        if len(set(keys)) != len(keys):
            raise FormError("part keys must be unique", "parts")
        if sum(p.kind == "identity" for p in self.parts) > 1:
            raise FormError("at most one identity block", "parts")
        if not any(p.kind != "identity" for p in self.parts) and not self.parts:
            raise FormError("a form needs parts", "parts")

    @property
    def has_identity(self) -> bool:
        return any(p.kind == "identity" for p in self.parts)

    def answers(self, posted: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
        """(answers, errors by part key) from posted form fields; identity fields ignored."""
        answers: dict[str, str] = {}
        errors: dict[str, str] = {}
        for part in self.parts:
            if part.kind == "identity":
                continue
            try:
                answers[part.key] = part.answer(posted.get(part.key))
            except FormError as exc:
                errors[part.key] = str(exc)
        return answers, errors


def health_check_form() -> FormDefinition:
    """The first shipped form: 人間ドック助成金申請 (health-check subsidy)."""
    return FormDefinition(
        form_id="ningen-dock",
        title_ja="人間ドック助成金申請",
        title_en="Health check (ningen dock) subsidy application",
        parts=(
            Part("identity", "identity", "申請者（本人確認情報）", "Applicant (verified identity)"),
            Part("exam_date", "date", "受診予定日", "Planned examination date"),
            Part("clinic", "text", "受診機関", "Medical institution"),
            Part(
                "insurance",
                "choice",
                "加入保険",
                "Health insurance",
                options=("国民健康保険", "後期高齢者医療制度", "その他"),
            ),
            Part("bank_account", "text", "振込口座", "Bank account for the transfer"),
        ),
    )


def canonical_document(
    *,
    form: FormDefinition,
    submission_id: str,
    identity: Mapping[str, Any],
    answers: Mapping[str, str],
    sub: str,
) -> bytes:
    """The bytes the resident signs: canonical JSON of the application."""
    document = {
        "type": "myna-forms/application-v1",
        "form_id": form.form_id,
        "form_title": form.title_ja,
        "submission_id": submission_id,
        "applicant": {
            "sub": sub,
            **{k: identity[k] for k in IDENTITY_ITEMS if k in identity},
        },
        "answers": {
            part.key: answers.get(part.key, "") for part in form.parts if part.key in answers
        },
    }
    return json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode(
        "utf-8"
    )


def document_digest(document: bytes) -> bytes:
    return hashlib.sha256(document).digest()


def labels(parts: Sequence[Part], lang: str) -> dict[str, str]:
    return {p.key: p.label(lang) for p in parts}
