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
        "demo_phone": "デモ：クリックすると、スマートフォンのシミュレーターで"
        "この QR コードを読み取ります",
        "phone_heading": "スマートフォンで読み取る",
        "phone_steps": "スマートフォンの myna-idp アプリを開き、アプリでこの QR コードを"
        "読み取ってください。QR コードは毎秒変わります。",
        "qr_alt": "ログイン用の QR コード（毎秒更新）。確認コード {code}",
        "qr_show_text": "QR コードの内容を文字で表示",
        "qr_text_note": "内容は毎秒変わり、数秒で無効になります。",
        "qr_enlarge": "QR コードを拡大",
        "qr_shrink": "QR コードを元の大きさに戻す",
        "qr_hidden": "スマートフォンが受け付けたため、QR コードは表示していません。",
        "verification_heading": "確認コード",
        "verification_note": "スマートフォンに同じ番号が表示されていることを確かめてから、"
        "暗証番号を入力してください。番号が違うときは、スマートフォンで操作をやめてください。",
        "same_device_heading": "このスマートフォンで続ける",
        "same_device_steps": "このページをスマートフォンで開いているときは、アプリを開いて"
        "カードを読み取ってください。終わるとこのページに戻ります。",
        "open_app": "myna-idp アプリを開く",
        "phone_intro": "このページは、パソコンなどに表示された QR コードから開かれました。",
        "phone_app_steps": "ログインを続けるには myna-idp アプリを開き、アプリの読み取り機能で"
        "パソコンの QR コードを読み取ってください。",
        "phone_open_note": "このボタンは QR コードを読み取ってから数秒の間だけ使えます。"
        "うまくいかないときは、アプリで QR コードを読み取り直してください。",
        "phone_check": "アプリには、ログインを求めているサービス名とそのアドレス、"
        "確認コードが表示されます。パソコンと同じ確認コードか必ず確かめてください。"
        "自分で始めたログインでなければ、続けないでください。",
        "phone_invalid": "この QR コードは正しくありません。"
        "パソコンの画面の QR コードを読み取り直してください。",
        "rate_limited": "ログインの要求が多すぎます。しばらく待ってからもう一度お試しください。",
        "status_checking": "カードを確認しています…",
        "status_unavailable": "一時的に状況を確認できません。自動的に再試行しています…",
        "status_heading": "状況",
        "status_created": "カードの読み取りを待っています。",
        "status_picked_up": "カードを待っています。スマートフォンや端末の案内に従って、"
        "マイナンバーカードを読み取らせてください。",
        "status_enroll_needed": "初回のため、署名用電子証明書のパスワード"
        "（英数字6〜16文字）も必要です。"
        "端末の案内に従ってください。",
        "status_sign_needed": "署名の確認です。端末に表示された内容を確かめ、"
        "署名用電子証明書のパスワード（英数字6〜16文字）を入力してください。",
        "status_card_verified": "カードを確認しました。次へ進みます。",
        "failure_sign_certificate_revoked": "署名用電子証明書が失効しています。"
        "住所・氏名などの登録内容が変わった可能性があります。"
        "お住まいの市区町村の窓口で電子証明書を更新してください。",
        "failure_sign_transaction_unavailable": "署名の依頼の有効期限が切れたか、"
        "すでに署名されています。利用中のサービスに戻ってやり直してください。",
        "failure_signer_mismatch": "ログインした方とは別の方のカードで署名されました。",
        "status_finished": "このログインは完了しています。",
        "status_cancelled": "このログインは中止されました。",
        "status_failed": "カードを確認できませんでした。",
        "status_expired": "時間切れです。もう一度ログインし直してください。",
        "continue": "次へ",
        "cancel": "ログインをやめる",
        "retry": "もう一度試す",
        "expires_note": "この画面は {minutes} 分で無効になります。",
        "noscript": "JavaScript が無効な場合は、QR コードが古くならないうちにページを再読み込みし、"
        "カードの読み取り後に「次へ」を押してください。",
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
        "item_offline_access": "ログインしていない間の利用",
        "item_sign": "電子署名（署名用電子証明書で署名する内容）",
        "value_offline_access": "ログインしていない間も、このサービスが上記の情報を"
        "引き続き受け取れます（同意を取り消すまで）。",
        "item_age_over_18": "18歳以上かどうか",
        "item_age_over_65": "65歳以上かどうか",
        "item_resident_of": "住んでいる市区町村",
        "value_yes": "はい",
        "value_no": "いいえ",
        "value_no_municipality": "対象の市区町村ではありません（何も提供しません）",
        "gender_male": "男性",
        "gender_female": "女性",
        "gender_other": "その他・不明",
        "error_title": "ログインできませんでした",
        "back_to_service": "利用中のサービスに戻ってやり直してください。",
        "not_your_login": "このログインはこのブラウザで開始されたものではありません。",
        "not_verified_yet": "まだカードが確認されていません。カードの読み取りを完了してください。",
        "csrf_failed": "画面の有効期限が切れたか、不正な操作です。もう一度やり直してください。",
        "failure_default": "カードを確認できませんでした。",
        "failure_user_cancelled": "スマートフォンでログインが中止されました。",
        "failure_pin_blocked": "暗証番号がロックされています。"
        "お住まいの市区町村の窓口で暗証番号の初期化を行ってください。",
        "failure_card_unusable": "カードを読み取れませんでした。"
        "カードの位置を確かめて、もう一度試してください。",
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
        "demo_phone": "Demo: click to scan this QR code with the phone simulator",
        "phone_heading": "Scan with your smartphone",
        "phone_steps": "Open the myna-idp app on your smartphone and scan this QR code with the "
        "app. The code changes every second.",
        "qr_alt": "Sign-in QR code (changes every second). Verification code {code}",
        "qr_show_text": "Show the QR code as text",
        "qr_text_note": "It changes every second and is valid for a few seconds only.",
        "qr_enlarge": "Enlarge the QR code",
        "qr_shrink": "Make the QR code smaller again",
        "qr_hidden": "Your smartphone has taken over, so the QR code is no longer shown.",
        "verification_heading": "Verification code",
        "verification_note": "Check that your smartphone shows the same number before you enter "
        "your PIN. If the number differs, stop on your smartphone.",
        "same_device_heading": "Continue on this smartphone",
        "same_device_steps": "If you opened this page on your smartphone, open the app and read "
        "your card. You will come back to this page afterwards.",
        "open_app": "Open the myna-idp app",
        "phone_intro": "You opened this page from a QR code shown on a computer or another screen.",
        "phone_app_steps": "To sign in, open the myna-idp app and scan the computer's QR code with "
        "the app's scanner.",
        "phone_open_note": "This button works only for a few seconds after scanning. If it does "
        "not, scan the QR code again from within the app.",
        "phone_check": "The app shows the service asking you to sign in, its address and a "
        "verification code. Always check that the code is the same as on the computer. If you "
        "did not start this sign-in yourself, do not continue.",
        "phone_invalid": "This QR code is not valid. "
        "Scan the QR code on the computer screen again.",
        "rate_limited": "Too many sign-in requests. Please wait a moment and try again.",
        "status_checking": "Checking your card…",
        "status_unavailable": "The status cannot be checked right now. Retrying automatically…",
        "status_heading": "Status",
        "status_created": "Waiting for the card.",
        "status_picked_up": "Waiting for your card. Follow the instructions on your smartphone "
        "or device and let it read your My Number card.",
        "status_enroll_needed": "First sign-in: the signature certificate password (6-16 letters "
        "and digits) is needed too. Follow the instructions on your device.",
        "status_sign_needed": "Signature: check the text shown on your device and enter the "
        "signature certificate password (6-16 letters and digits).",
        "status_card_verified": "Your card was verified. Continuing.",
        "failure_sign_certificate_revoked": "Your signature certificate has been revoked: your "
        "registered details (name, address, ...) have changed. Please renew the certificate at "
        "your municipal office.",
        "failure_sign_transaction_unavailable": "The signature request has expired or was already "
        "signed. Go back to the service and try again.",
        "failure_signer_mismatch": "The signature was made with another person's card.",
        "status_finished": "This sign-in is complete.",
        "status_cancelled": "This sign-in was cancelled.",
        "status_failed": "The card could not be verified.",
        "status_expired": "Time is up. Please start the sign-in again.",
        "continue": "Continue",
        "cancel": "Cancel sign-in",
        "retry": "Try again",
        "expires_note": "This page expires in {minutes} minutes.",
        "noscript": "Without JavaScript, reload the page for a fresh QR code, and press Continue "
        "after the card has been read.",
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
        "item_offline_access": "Access while you are signed out",
        "item_sign": "Electronic signature (what you sign with the signature certificate)",
        "value_offline_access": "This service can keep receiving the items above while you are "
        "signed out (until you withdraw your consent).",
        "item_age_over_18": "Whether you are 18 or older",
        "item_age_over_65": "Whether you are 65 or older",
        "item_resident_of": "Your municipality of residence",
        "value_yes": "Yes",
        "value_no": "No",
        "value_no_municipality": "Not one of the municipalities served (nothing is shared)",
        "gender_male": "Male",
        "gender_female": "Female",
        "gender_other": "Other / unknown",
        "error_title": "Sign-in failed",
        "back_to_service": "Go back to the service and try again.",
        "not_your_login": "This sign-in was not started in this browser.",
        "not_verified_yet": "The card has not been verified yet. Please finish reading the card.",
        "csrf_failed": "The page has expired or the request is not valid. Please try again.",
        "failure_default": "The card could not be verified.",
        "failure_user_cancelled": "The sign-in was stopped on the smartphone.",
        "failure_pin_blocked": "The PIN is locked. Have it reset at your municipal office.",
        "failure_card_unusable": "The card could not be read. Check how the card is placed and "
        "try again.",
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
