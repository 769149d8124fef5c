"""The forms tool's pages: resident flow (form, review, sign, done) and staff pages.

Resident: ``/forms/<id>`` (needs a card login; the identity block comes from the verified
claims in the server-side session) -> ``POST /forms/<id>/review`` -> ``POST /forms/<id>/sign``
(the RP builds the document, registers a sign transaction over the back channel and sends the
browser to the provider with ``scope ... sign`` and ``sign_transaction_id``) -> the provider
redirects to ``/callback``, which calls :func:`finish_signing`: token exchange, the result
fetched once, the CMS checked by the RP itself, the submission stored.

Staff (``/staff/...``, a demo without staff accounts: protect it in any real deployment):
forms list and editor, submissions, ``.p7s`` and document downloads, CSV (UTF-8 with BOM).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import secrets
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from relying_party_demo.cms_check import SignatureCheckError, verify_detached_cms
from relying_party_demo.form_parts import (
    IDENTITY_ITEMS,
    FormDefinition,
    FormError,
    Part,
    canonical_document,
    document_digest,
)
from relying_party_demo.form_store import FormStore, Submission
from relying_party_demo.form_texts import text
from relying_party_demo.sign_api import SignApi, SignApiError

__all__ = ["finish_signing", "forms", "identity_of", "install", "lang", "signing_failed"]

forms = Blueprint("forms", __name__)


def lang() -> str:
    chosen = request.args.get("lang")
    if chosen in ("ja", "en"):
        session["lang"] = chosen
    return "en" if session.get("lang") == "en" else "ja"


def store() -> FormStore:
    value = current_app.extensions["forms_store"]
    assert isinstance(value, FormStore)
    return value


def identity_of(profile: dict[str, Any]) -> dict[str, str]:
    """The identity block's values: the verified claims of the login (server side)."""
    claims = dict(profile.get("claims") or {})
    verified = claims.get("verified_claims")
    if isinstance(verified, list):
        verified = verified[0] if verified else None
    if isinstance(verified, dict) and isinstance(verified.get("claims"), dict):
        claims = {**claims, **verified["claims"]}
    identity: dict[str, str] = {}
    for item in IDENTITY_ITEMS:
        value = claims.get(item)
        if item == "address" and isinstance(value, dict):
            value = value.get("formatted")
        if isinstance(value, str) and value:
            identity[item] = value
    return identity


def verification_time(profile: dict[str, Any]) -> str:
    verified = (profile.get("claims") or {}).get("verified_claims")
    if isinstance(verified, list):
        verified = verified[0] if verified else None
    if isinstance(verified, dict):
        time = (verified.get("verification") or {}).get("time")
        if isinstance(time, str) and time:
            return time
    auth_time = profile.get("auth_time")
    if isinstance(auth_time, int | float):
        return datetime.fromtimestamp(auth_time, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return ""


def _form_or_404(form_id: str) -> FormDefinition:
    form = store().form(form_id)
    if form is None:
        abort(404)
    return form


def _render(template: str, **values: Any) -> str:
    current = lang()
    return render_template(template, lang=current, t=lambda key: text(key, current), **values)


def _profile() -> dict[str, Any] | None:
    profile = session.get("profile")
    return profile if isinstance(profile, dict) else None


@forms.get("/forms")
def index() -> str:
    return _render("rp/forms.html", forms=store().forms(), profile=_profile())


@forms.get("/forms/<form_id>")
def show(form_id: str) -> Any:
    form = _form_or_404(form_id)
    profile = _profile()
    if profile is None:
        return redirect(url_for("login", next=url_for("forms.show", form_id=form_id)))
    draft = session.get("drafts", {}).get(form_id, {})
    return _render(
        "rp/form.html",
        form=form,
        identity=identity_of(profile),
        verified_at=verification_time(profile),
        answers=draft.get("answers", {}),
        errors={},
    )


@forms.post("/forms/<form_id>/review")
def review(form_id: str) -> Any:
    form = _form_or_404(form_id)
    profile = _profile()
    if profile is None:
        return redirect(url_for("login", next=url_for("forms.show", form_id=form_id)))
    answers, errors = form.answers(request.form)
    identity = identity_of(profile)
    if errors:
        body = _render(
            "rp/form.html",
            form=form,
            identity=identity,
            verified_at=verification_time(profile),
            answers={k: request.form.get(k, "") for k in request.form},
            errors=errors,
        )
        return Response(body, status=400, mimetype="text/html")
    drafts = dict(session.get("drafts") or {})
    previous = drafts.get(form_id) or {}
    submission_id = previous.get("submission_id") or secrets.token_urlsafe(12)
    drafts[form_id] = {"submission_id": submission_id, "answers": answers}
    session["drafts"] = drafts
    return _render(
        "rp/review.html",
        form=form,
        identity=identity,
        verified_at=verification_time(profile),
        answers=answers,
        submission_id=submission_id,
    )


@forms.post("/forms/<form_id>/sign")
def sign(form_id: str) -> Any:
    """Build the document from the session (never from posted identity) and go sign it."""
    form = _form_or_404(form_id)
    profile = _profile()
    if profile is None:
        return redirect(url_for("login", next=url_for("forms.show", form_id=form_id)))
    draft = (session.get("drafts") or {}).get(form_id)
    if not draft or request.form.get("submission_id") != draft["submission_id"]:
        return _failure("no_draft", 400)
    submission_id = draft["submission_id"]
    if store().submission(submission_id) is not None:
        return redirect(url_for("forms.done", submission_id=submission_id))
    identity = identity_of(profile)
    document = canonical_document(
        form=form,
        submission_id=submission_id,
        identity=identity,
        answers=draft["answers"],
        sub=profile["sub"],
    )
    digest = document_digest(document)
    api: SignApi = current_app.extensions["sign_api"]
    shown = f"{form.title_ja}（受付番号 {submission_id}）"
    try:
        transaction_id = api.create(digest, shown)
    except SignApiError as exc:
        return _failure(exc.error, 502 if exc.status == 0 or exc.status >= 500 else 400)
    client = current_app.extensions["myna_client"]
    scope = str(current_app.config["SCOPE"]) + " sign"
    response = client.authorize_redirect(
        current_app.config["REDIRECT_URI"], scope=scope, sign_transaction_id=transaction_id
    )
    state = parse_qs(urlsplit(response.headers["Location"]).query).get("state", [""])[0]
    session["signing"] = {  # the document is rebuilt from the session (cookies stay small)
        "state": state,
        "form_id": form_id,
        "submission_id": submission_id,
        "sign_transaction_id": transaction_id,
        "digest": base64.b64encode(digest).decode("ascii"),
    }
    return response


def finish_signing(signing: dict[str, Any], token_claims: dict[str, Any] | None) -> Any:
    """The callback of a signing authorization (``token_claims``: the checked ID token)."""
    session.pop("signing", None)
    profile = _profile()
    form = store().form(signing["form_id"])
    if profile is None or form is None or token_claims is None:
        return _failure("login_required", 400)
    if token_claims.get("sub") != profile["sub"]:
        return _failure("signer_mismatch", 400)
    api: SignApi = current_app.extensions["sign_api"]
    try:
        result = api.result(signing["sign_transaction_id"])
    except SignApiError as exc:
        return _failure(exc.error, 502)
    draft = (session.get("drafts") or {}).get(signing["form_id"]) or {}
    if draft.get("submission_id") != signing["submission_id"]:
        return _failure("no_draft", 400)
    identity = identity_of(profile)
    document = canonical_document(
        form=form,
        submission_id=signing["submission_id"],
        identity=identity,
        answers=draft["answers"],
        sub=profile["sub"],
    )
    if base64.b64encode(document_digest(document)).decode("ascii") != signing["digest"]:
        return _failure("digest_mismatch", 400)  # the session changed since the signing began
    sign_ca: x509.Certificate | None = current_app.extensions["sign_ca"]
    if sign_ca is None:
        return _failure("sign_ca_not_configured", 500)
    try:
        verified = verify_detached_cms(
            result.cms,
            document_digest=document_digest(document),
            sign_ca=sign_ca,
            expected_name=identity.get("name", ""),
            expected_birthdate=identity.get("birthdate", ""),
        )
    except SignatureCheckError as exc:
        return _failure(exc.code, 400)
    submission = Submission(
        submission_id=signing["submission_id"],
        form_id=form.form_id,
        sub=profile["sub"],
        identity=identity,
        answers=dict(json.loads(document)["answers"]),
        document=document,
        digest_hex=document_digest(document).hex(),
        cms=result.cms,
        signer_name=verified.signer_name,
        signer_serial=verified.serial_hex,
        signed_at=verified.signing_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        submitted_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    store().add_submission(submission)  # the same id twice keeps the first
    drafts = dict(session.get("drafts") or {})
    drafts.pop(signing["form_id"], None)
    session["drafts"] = drafts
    return redirect(url_for("forms.done", submission_id=submission.submission_id))


@forms.post("/forms/<form_id>/submit")
def submit_unsigned(form_id: str) -> Response:
    """A submission must be signed: a plain POST of the answers is refused."""
    _form_or_404(form_id)
    return _failure("signature_required", 400)


@forms.get("/forms/done/<submission_id>")
def done(submission_id: str) -> Any:
    submission = store().submission(submission_id)
    profile = _profile()
    if submission is None or profile is None or submission.sub != profile["sub"]:
        abort(404)
    return _render("rp/done.html", submission=submission, form=store().form(submission.form_id))


def _failure(code: str, status: int) -> Response:
    body = _render("rp/form_error.html", code=code)
    return Response(body, status=status, mimetype="text/html")


# -- staff ----------------------------------------------------------------------------------


@forms.get("/staff")
def staff() -> str:
    all_forms = {f.form_id: f for f in store().forms()}
    return _render("rp/staff.html", submissions=store().submissions(), forms=all_forms)


@forms.get("/staff/submissions/<submission_id>.p7s")
def download_cms(submission_id: str) -> Response:
    submission = store().submission(submission_id) or abort(404)
    return Response(
        submission.cms,
        mimetype="application/pkcs7-signature",
        headers={"Content-Disposition": f'attachment; filename="{submission_id}.p7s"'},
    )


@forms.get("/staff/submissions/<submission_id>.json")
def download_document(submission_id: str) -> Response:
    submission = store().submission(submission_id) or abort(404)
    return Response(
        submission.document,
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="{submission_id}.json"'},
    )


@forms.get("/staff/forms/<form_id>/submissions.csv")
def export_csv(form_id: str) -> Response:
    form = _form_or_404(form_id)
    out = io.StringIO()
    writer = csv.writer(out)
    parts = [p for p in form.parts if p.kind != "identity"]
    writer.writerow(
        ["受付番号", "提出日時", "署名者", "署名日時", "証明書シリアル", "SHA-256"]
        + [text(item, "ja") for item in IDENTITY_ITEMS]
        + [p.label_ja for p in parts]
    )
    for s in store().submissions(form_id):
        writer.writerow(
            [s.submission_id, s.submitted_at, s.signer_name, s.signed_at, s.signer_serial]
            + [s.digest_hex]
            + [s.identity.get(item, "") for item in IDENTITY_ITEMS]
            + [s.answers.get(p.key, "") for p in parts]
        )
    return Response(
        "\ufeff" + out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{form_id}.csv"'},
    )


@forms.get("/staff/forms")
def staff_forms() -> str:
    return _render("rp/staff_forms.html", forms=store().forms(), error=None, source="")


@forms.post("/staff/forms")
def save_form() -> Any:
    """Save a form definition (JSON of parts: text, date, choice, identity)."""
    source = request.form.get("definition", "")
    try:
        data = json.loads(source)
        if not isinstance(data, dict):
            raise FormError("the definition must be a JSON object")
        store().save_form(FormDefinition.from_json(data))
    except (ValueError, FormError) as exc:
        body = _render("rp/staff_forms.html", forms=store().forms(), error=str(exc), source=source)
        return Response(body, status=400, mimetype="text/html")
    return redirect(url_for("forms.staff_forms"))


def signing_failed(error: str, description: str | None) -> Response:
    """The provider ended the signing with an error (a revoked certificate is explained)."""
    if error == "access_denied" and description == "certificate_revoked":
        return _failure("certificate_revoked", 403)
    return _failure(error, 400)


def install(
    app: Flask, *, client: Any, sign_api: SignApi, sign_ca: x509.Certificate | None
) -> None:
    app.extensions["forms_store"] = FormStore(app.config["FORMS_DB"])
    app.extensions["myna_client"] = client
    app.extensions["sign_api"] = sign_api
    app.extensions["sign_ca"] = sign_ca
    app.jinja_env.globals["part_label"] = Part.label
    app.register_blueprint(forms)
