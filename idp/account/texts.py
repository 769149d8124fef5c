"""The words residents read on the login and consent pages, Japanese first, English second.

Pages pick a locale with :func:`pick_locale` (an explicit ``?lang=`` choice, then the
request's ``ui_locales``, then Japanese) and look texts up with :func:`text`. Every key exists
in every locale (a test checks it), so a page never shows a key name.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

__all__ = ["DEFAULT_LOCALE", "LOCALES", "TEXTS", "pick_locale", "text"]

DEFAULT_LOCALE: Final = "ja"
LOCALES: Final = ("ja", "en")

TEXTS: Final[dict[str, dict[str, str]]] = {
    "ja": {
        "page_title": "マイナンバーカードでログイン",
        "skip_to_main": "本文へ移動",
        "switch_language": "English",
        "who_is_asking": "{client} がマイナンバーカードでのログインを求めています。",
        "items_heading": "ログイン後にこのサービスが求める情報",
        "no_items": "本人確認のみ（住所・氏名などの情報は提供しません）",
        "reader_heading": "このパソコンのカードリーダーを使う",
        "reader_steps": "カードリーダーにマイナンバーカードを置き、"
        "端末で次のコマンドを実行してください。"
        "利用者証明用電子証明書の暗証番号（数字4桁）を入力します。",
        "reader_copy": "コマンドをコピー",
        "reader_copied": "コピーしました",
        "demo_heading": "デモ：仮想カードを使う",
        "demo_steps": "これはテスト環境です。カードリーダーの代わりに、テスト住民の仮想カードを"
        "使えます（暗証番号 1234、署名用パスワード ABC123）。",
        "phone_heading": "スマートフォンを使う",
        "phone_soon": "スマートフォンでの読み取りは準備中です。",
        "status_heading": "状況",
        "status_created": "カードの読み取りを待っています。",
        "status_picked_up": "カードを読み取っています。端末の案内に従ってください。",
        "status_enroll_needed": "初回のため、署名用電子証明書のパスワード"
        "（英数字6〜16文字）も必要です。"
        "端末の案内に従ってください。",
        "status_card_verified": "カードを確認しました。次へ進みます。",
        "status_finished": "このログインは完了しています。",
        "status_cancelled": "このログインは中止されました。",
        "status_failed": "カードを確認できませんでした。",
        "status_expired": "時間切れです。もう一度ログインし直してください。",
        "continue": "次へ",
        "cancel": "ログインをやめる",
        "retry": "もう一度試す",
        "expires_note": "この画面は {minutes} 分で無効になります。",
        "noscript": "JavaScript が無効な場合は、カードの読み取り後に「次へ」を押してください。",
        "consent_title": "情報提供への同意",
        "consent_intro": "{client} に次の情報を提供します。内容を確認してください。",
        "consent_source": "情報はマイナンバーカードの署名用電子証明書で確認したものです"
        "（確認日時: {when}）。",
        "consent_remember": "同意した内容は記録され、"
        "次回からこのサービスには確認なしで提供されます。",
        "approve": "同意して提供する",
        "deny": "同意しない",
        "item_name": "氏名",
        "item_address": "住所",
        "item_birthdate": "生年月日",
        "item_gender": "性別",
        "gender_male": "男性",
        "gender_female": "女性",
        "gender_other": "その他・不明",
        "error_title": "ログインできませんでした",
        "back_to_service": "利用中のサービスに戻ってやり直してください。",
        "not_your_login": "このログインはこのブラウザで開始されたものではありません。",
        "not_verified_yet": "まだカードが確認されていません。カードの読み取りを完了してください。",
        "csrf_failed": "画面の有効期限が切れたか、不正な操作です。もう一度やり直してください。",
        "failure_default": "カードを確認できませんでした。",
        "failure_certificate_expired": "カードの電子証明書の有効期限が切れています。",
        "failure_certificate_revoked": "カードの電子証明書が失効しています。",
        "failure_certificate_untrusted": "このカードの電子証明書は"
        "信頼できる発行元のものではありません。",
        "failure_certificate_wrong_purpose": "利用者証明用ではない電子証明書が使われました。",
        "failure_signature_invalid": "カードの署名を確認できませんでした。",
        "failure_revocation_unavailable": "電子証明書の失効情報を確認できませんでした。",
        "failure_card_mismatch": "途中で別のカードが使われました。",
        "failure_enrollment_unavailable": "このカードには署名用電子証明書がないため、"
        "初回登録ができません。",
    },
    "en": {
        "page_title": "Sign in with your My Number card",
        "skip_to_main": "Skip to main content",
        "switch_language": "日本語",
        "who_is_asking": "{client} asks you to sign in with your My Number card.",
        "items_heading": "What this service will ask for after you sign in",
        "no_items": "Only that it is you (no name, address or other details)",
        "reader_heading": "Use the card reader on this computer",
        "reader_steps": "Put your My Number card on the reader and run this command in a terminal. "
        "You will enter the 4-digit PIN of the user authentication certificate.",
        "reader_copy": "Copy the command",
        "reader_copied": "Copied",
        "demo_heading": "Demo: use a virtual card",
        "demo_steps": "This is a test installation. Instead of a reader you can use the virtual "
        "card of a test resident (PIN 1234, signature password ABC123).",
        "phone_heading": "Use a smartphone",
        "phone_soon": "Reading the card with a smartphone is coming soon.",
        "status_heading": "Status",
        "status_created": "Waiting for the card.",
        "status_picked_up": "Reading the card. Follow the instructions on your device.",
        "status_enroll_needed": "First sign-in: the signature certificate password (6-16 letters "
        "and digits) is needed too. Follow the instructions on your device.",
        "status_card_verified": "Your card was verified. Continuing.",
        "status_finished": "This sign-in is complete.",
        "status_cancelled": "This sign-in was cancelled.",
        "status_failed": "The card could not be verified.",
        "status_expired": "Time is up. Please start the sign-in again.",
        "continue": "Continue",
        "cancel": "Cancel sign-in",
        "retry": "Try again",
        "expires_note": "This page expires in {minutes} minutes.",
        "noscript": "Without JavaScript, press Continue after the card has been read.",
        "consent_title": "Consent to share your information",
        "consent_intro": "{client} will receive the following information. Please check it.",
        "consent_source": "Verified with the signature certificate of your My Number card "
        "(verified at {when}).",
        "consent_remember": "Your consent is recorded; next time this service receives these "
        "items without asking.",
        "approve": "Agree and share",
        "deny": "Do not share",
        "item_name": "Name",
        "item_address": "Address",
        "item_birthdate": "Date of birth",
        "item_gender": "Gender",
        "gender_male": "Male",
        "gender_female": "Female",
        "gender_other": "Other / unknown",
        "error_title": "Sign-in failed",
        "back_to_service": "Go back to the service and try again.",
        "not_your_login": "This sign-in was not started in this browser.",
        "not_verified_yet": "The card has not been verified yet. Please finish reading the card.",
        "csrf_failed": "The page has expired or the request is not valid. Please try again.",
        "failure_default": "The card could not be verified.",
        "failure_certificate_expired": "The card's certificate has expired.",
        "failure_certificate_revoked": "The card's certificate has been revoked.",
        "failure_certificate_untrusted": "The card's certificate is not from a trusted issuer.",
        "failure_certificate_wrong_purpose": "A certificate other than the user authentication "
        "certificate was used.",
        "failure_signature_invalid": "The card's signature could not be verified.",
        "failure_revocation_unavailable": "The revocation status of the certificate could not "
        "be checked.",
        "failure_card_mismatch": "A different card was used part-way through.",
        "failure_enrollment_unavailable": "This card has no signature certificate, so it cannot "
        "be registered.",
    },
}


def pick_locale(choice: str | None, ui_locales: Iterable[str] = ()) -> str:
    """``choice`` if it is a supported locale, else the first supported ``ui_locales`` tag
    (by primary language), else Japanese."""
    if choice in LOCALES:
        return str(choice)
    for tag in ui_locales:
        primary = tag.split("-", 1)[0].lower()
        if primary in LOCALES:
            return primary
    return DEFAULT_LOCALE


def text(locale: str, key: str, **values: str) -> str:
    """The text ``key`` in ``locale`` with ``values`` filled in."""
    table = TEXTS.get(locale, TEXTS[DEFAULT_LOCALE])
    template = table[key]
    return template.format(**values) if values else template
