"""What the phone app says, Japanese first, English second (every key in both; a test checks).

Error texts are keyed by the device API's error codes (``error_<code>``) so an app builder can
see, code by code, what to tell the person and what they can do next (docs/phone-app.md).
"""

from __future__ import annotations

from typing import Final

__all__ = ["DEFAULT_LOCALE", "LOCALES", "TEXTS", "error_key", "item_label", "pick_locale", "text"]

DEFAULT_LOCALE: Final = "ja"
LOCALES: Final = ("ja", "en")

TEXTS: Final[dict[str, dict[str, str]]] = {
    "ja": {
        "app_title": "マイナ連携アプリ",
        "test_only": "シミュレーター（テスト用）",
        "skip_to_main": "本文へ移動",
        "switch_language": "English",
        "home_heading": "QRコードを読み取る",
        "home_help": "パソコンに表示されたQRコードの内容（またはアプリリンク）を"
        "貼り付けてください。"
        "デモでは、パソコンの画面のQRコードをクリックすると自動で読み取ります。",
        "qr_label": "QRコードの内容",
        "scan": "読み取る",
        "scanned_auto": "QRコードを読み取りました。接続しています…",
        "card_heading": "使うカード（テスト住民）",
        "card_help": "このスマートフォンにかざすマイナンバーカードを選びます。"
        "暗証番号は 1234、署名用パスワードは ABC123 です。",
        "card_choose": "このカードを使う",
        "card_current": "使用中のカード: {name}",
        "card_tries": "暗証番号の残り {pin} 回・署名用パスワードの残り {password} 回",
        "card_tries_unknown": "残り回数はカードを使ったあとに表示されます",
        "card_blocked": "暗証番号がロックされています",
        "card_replace": "カードを再発行する（窓口での再設定の代わり）",
        "card_replaced": "{name} さんのカードを新しくしました。",
        "confirm_heading": "ログインの確認",
        "confirm_asking": "{client} がマイナンバーカードでのログインを求めています。",
        "confirm_enroll": "初回のため、本人確認情報（氏名・住所・生年月日・性別）の"
        "登録も行います。",
        "origin_label": "接続先",
        "code_label": "確認コード",
        "code_help": "パソコンの画面に同じ確認コードが表示されていることを確かめてください。"
        "違う場合や、自分で始めたログインでない場合は「中止する」を押してください。",
        "items_label": "ログイン後にサービスへ提供される情報",
        "no_items": "本人確認のみ（氏名・住所などは提供しません）",
        "item_name": "氏名",
        "item_address": "住所",
        "item_birthdate": "生年月日",
        "item_gender": "性別",
        "continue": "続ける",
        "cancel": "中止する",
        "hold_card": "カードをスマートフォンの背面にかざしたままにしてください。",
        "pin_heading": "利用者証明用電子証明書の暗証番号",
        "pin_help": "数字4桁の暗証番号を入力してください。",
        "pin_label": "暗証番号（数字4桁）",
        "pin_entered": "{n} 桁入力済み",
        "pin_delete": "1文字消す",
        "pin_clear": "すべて消す",
        "ok": "OK",
        "tries_left": "残り {n} 回",
        "notice_wrong_secret_auth": "暗証番号が違います。",
        "notice_wrong_secret_sign": "パスワードが違います。",
        "notice_bad_format_auth": "暗証番号は数字4桁です。"
        "カードには送っていません（回数は減っていません）。",
        "notice_bad_format_sign": "パスワードは英字と数字を両方含む6〜16文字です。"
        "カードには送っていません（回数は減っていません）。",
        "notice_enrollment": "初回のため、署名用電子証明書のパスワードも必要です。",
        "notice_signature": "{client} から電子署名の依頼です。内容を確かめ、"
        "署名用電子証明書のパスワードを入力すると署名します。",
        "sign_text_label": "署名する内容",
        "last_try_heading": "残り1回です",
        "last_try_body": "あと1回間違えると暗証番号がロックされ、"
        "市区町村の窓口で再設定するまでカードでログインできなくなります。"
        "暗証番号が確かな場合だけ続けてください。",
        "last_try_body_sign": "あと1回間違えると署名用パスワードがロックされ、"
        "市区町村の窓口で再設定が必要になります。確かな場合だけ続けてください。",
        "use_last_try": "入力を続ける",
        "password_heading": "署名用電子証明書のパスワード",
        "password_help": "英数字6〜16文字のパスワードを入力してください"
        "（英字は大文字として扱います）。",
        "password_label": "署名用パスワード",
        "working": "カードと通信しています。カードを離さないでください。",
        "working_heading": "処理中",
        "done_heading": "完了しました",
        "done_body": "パソコンの画面に戻ってください。画面は自動で次に進みます。",
        "done_enrolled": "本人確認情報を登録しました。",
        "done_return": "ブラウザに戻る",
        "cancelled_heading": "中止しました",
        "cancelled_body": "ログインを中止しました。パソコンの画面にもその旨が表示されます。",
        "cancelled_timeout": "操作がなかったため中止しました。",
        "cancelled_last_try_declined": "暗証番号の入力を中止しました（残り回数は減っていません）。",
        "failed_heading": "ログインできませんでした",
        "again": "最初に戻る",
        "retry_after": "{n} 秒ほど待ってからやり直してください。",
        "detail_label": "詳細（開発者向け）",
        "error_qr_malformed": "読み取った内容は、このアプリで使えるQRコードではありません。",
        "error_qr_unknown_provider": "このアプリが知らない接続先のQRコードです。"
        "ログイン画面のアドレスが正しいか確かめてください。",
        "error_qr_unknown": "このQRコードのログインは見つかりません。"
        "パソコンの画面を読み込み直してから、もう一度読み取ってください。",
        "error_qr_stale": "QRコードの有効期限（数秒）が切れています。"
        "パソコンの画面に今表示されているQRコードを読み取ってください。"
        "スクリーンショットや送られてきた画像は使えません。",
        "error_qr_forged": "QRコードが正しくありません。ログイン画面を直接読み取ってください。",
        "error_already_picked_up": "このログインは、すでに別の端末で読み取られています。"
        "心当たりがない場合は、パソコンでログインを中止してください。",
        "error_transaction_expired": "ログインの有効期限が切れました。"
        "サービスの画面からもう一度ログインしてください。",
        "error_rate_limited": "短い時間に操作が多すぎます。",
        "error_provider_unreachable": "接続先に接続できません。通信状態を確かめてください。",
        "error_provider_mismatch": "接続先の応答が正しくないため中止しました。",
        "error_bad_answer": "接続先の応答が正しくないため中止しました。",
        "error_provider_error": "接続先との通信で問題が起きました。もう一度やり直してください。",
        "error_card_busy": "このカードは別のログインで使用中です。"
        "そちらを終えてからやり直してください。",
        "error_unknown_resident": "そのカードはありません。",
        "error_pin_blocked": "暗証番号がロックされています。"
        "お住まいの市区町村の窓口で暗証番号の再設定を受けてください。",
        "error_enrollment_unavailable": "このカードには署名用電子証明書がないため（15歳未満など）、"
        "初回の登録ができません。",
        "error_card_error": "カードを読み取れませんでした。"
        "カードをかざし直してやり直してください。",
        "error_certificate_expired": "カードの電子証明書の有効期限が切れています。"
        "市区町村の窓口で更新してください。",
        "error_certificate_not_yet_valid": "カードの電子証明書がまだ有効になっていません。",
        "error_certificate_revoked": "カードの電子証明書が失効しています。",
        "error_certificate_untrusted": "このカードの電子証明書は"
        "信頼できる発行元のものではありません。",
        "error_revocation_unavailable": "電子証明書の失効情報を確認できませんでした。"
        "しばらくしてからやり直してください。",
        "error_certificate_wrong_purpose": "利用者証明用ではない電子証明書が使われました。",
        "error_revocation_stale": "電子証明書の失効情報が古いため確認できませんでした。"
        "しばらくしてからやり直してください。",
        "error_revocation_unknown": "電子証明書の状態を確認できませんでした。",
        "error_signature_invalid": "カードの署名を確認できませんでした。",
        "error_card_mismatch": "途中で別のカードが使われました。最初からやり直してください。",
        "error_transaction_closed": "このログインはすでに終わっています。",
        "error_transaction_not_found": "このログインは見つかりません。",
        "error_nonce_used": "このログインにはすでに応答済みです。",
        "error_temporarily_unavailable": "接続先が一時的に使えません。"
        "しばらくしてからやり直してください。",
        "error_internal_error": "アプリで問題が起きました。最初からやり直してください。",
        "error_default": "ログインできませんでした。最初からやり直してください。",
    },
    "en": {
        "app_title": "Myna app",
        "test_only": "Simulator (test only)",
        "skip_to_main": "Skip to main content",
        "switch_language": "日本語",
        "home_heading": "Scan the QR code",
        "home_help": "Paste the content of the QR code shown on your computer (or an app link). "
        "In the demo, clicking the QR code on the computer's page scans it for you.",
        "qr_label": "QR code content",
        "scan": "Scan",
        "scanned_auto": "QR code scanned. Connecting…",
        "card_heading": "Card (test resident)",
        "card_help": "Choose the My Number card you hold to this phone. "
        "The PIN is 1234, the signature password ABC123.",
        "card_choose": "Use this card",
        "card_current": "Card in use: {name}",
        "card_tries": "PIN: {pin} tries left · signature password: {password} tries left",
        "card_tries_unknown": "Tries left are shown once the card has been used",
        "card_blocked": "The PIN is blocked",
        "card_replace": "Reissue the card (instead of a reset at the office)",
        "card_replaced": "{name}'s card was replaced with a new one.",
        "confirm_heading": "Confirm the sign-in",
        "confirm_asking": "{client} asks you to sign in with your My Number card.",
        "confirm_enroll": "As this is the first time, your identity details (name, address, date "
        "of birth, gender) are registered too.",
        "origin_label": "Provider",
        "code_label": "Verification code",
        "code_help": "Check that your computer shows the same verification code. If it does "
        "not, or you did not start this sign-in yourself, press Cancel.",
        "items_label": "What the service receives after you sign in",
        "no_items": "Only that it is you (no name, address or other details)",
        "item_name": "Name",
        "item_address": "Address",
        "item_birthdate": "Date of birth",
        "item_gender": "Gender",
        "continue": "Continue",
        "cancel": "Cancel",
        "hold_card": "Keep the card against the back of your phone.",
        "pin_heading": "PIN of the user authentication certificate",
        "pin_help": "Enter your 4-digit PIN.",
        "pin_label": "PIN (4 digits)",
        "pin_entered": "{n} digits entered",
        "pin_delete": "Delete one digit",
        "pin_clear": "Clear",
        "ok": "OK",
        "tries_left": "{n} tries left",
        "notice_wrong_secret_auth": "Wrong PIN.",
        "notice_wrong_secret_sign": "Wrong password.",
        "notice_bad_format_auth": "The PIN is 4 digits. Nothing was sent to the card (no try "
        "was used).",
        "notice_bad_format_sign": "The password is 6 to 16 letters and digits, with at least one "
        "of each. Nothing was sent to the card (no try was used).",
        "notice_signature": "{client} asks for your electronic signature. Check the text; "
        "entering the signature certificate password signs it.",
        "sign_text_label": "What you sign",
        "notice_enrollment": "As this is the first time, the signature certificate password is "
        "needed too.",
        "last_try_heading": "One try left",
        "last_try_body": "One more wrong PIN blocks it, and you cannot sign in with the card "
        "until your municipal office resets it. Continue only if you are sure of the PIN.",
        "last_try_body_sign": "One more wrong password blocks it, and your municipal office has "
        "to reset it. Continue only if you are sure.",
        "use_last_try": "Enter it anyway",
        "password_heading": "Signature certificate password",
        "password_help": "Enter the 6-16 character password (letters and digits; letters are "
        "taken as upper case).",
        "password_label": "Signature password",
        "working": "Talking to the card. Keep it against the phone.",
        "working_heading": "Working",
        "done_heading": "Done",
        "done_body": "Go back to your computer. Its page moves on by itself.",
        "done_enrolled": "Your identity details were registered.",
        "done_return": "Back to the browser",
        "cancelled_heading": "Cancelled",
        "cancelled_body": "The sign-in was cancelled. Your computer's page says so too.",
        "cancelled_timeout": "Cancelled because nothing happened for a while.",
        "cancelled_last_try_declined": "PIN entry stopped (no try was used).",
        "failed_heading": "Sign-in failed",
        "again": "Start over",
        "retry_after": "Wait about {n} seconds, then try again.",
        "detail_label": "Details (for developers)",
        "error_qr_malformed": "This is not a QR code this app can use.",
        "error_qr_unknown_provider": "This QR code is for a provider this app does not know. "
        "Check the address of the sign-in page.",
        "error_qr_unknown": "No sign-in was found for this QR code. Reload the page on your "
        "computer and scan again.",
        "error_qr_stale": "This QR code has expired (they last a few seconds). Scan the code your "
        "computer shows right now. Screenshots and forwarded pictures do not work.",
        "error_qr_forged": "This QR code is not valid. Scan the sign-in page directly.",
        "error_already_picked_up": "This sign-in was already picked up by another device. If that "
        "was not you, cancel the sign-in on your computer.",
        "error_transaction_expired": "The sign-in has expired. Start again from the service.",
        "error_rate_limited": "Too many attempts in a short time.",
        "error_provider_unreachable": "Cannot reach the provider. Check your connection.",
        "error_provider_mismatch": "The provider's answer is not valid; stopped.",
        "error_bad_answer": "The provider's answer is not valid; stopped.",
        "error_provider_error": "Something went wrong talking to the provider. Please try again.",
        "error_card_busy": "This card is being used by another sign-in. Finish that one first.",
        "error_unknown_resident": "There is no such card.",
        "error_pin_blocked": "The PIN is blocked. Have it reset at your municipal office.",
        "error_enrollment_unavailable": "This card has no signature certificate (holders under "
        "15, for example), so it cannot be registered.",
        "error_card_error": "The card could not be read. Hold it to the phone again and retry.",
        "error_certificate_expired": "The card's certificate has expired. Renew it at your "
        "municipal office.",
        "error_certificate_not_yet_valid": "The card's certificate is not valid yet.",
        "error_certificate_revoked": "The card's certificate has been revoked.",
        "error_certificate_untrusted": "The card's certificate is not from a trusted issuer.",
        "error_revocation_unavailable": "The revocation status could not be checked. Try again "
        "later.",
        "error_certificate_wrong_purpose": "A certificate other than the user authentication "
        "certificate was used.",
        "error_revocation_stale": "The revocation information is out of date. Try again later.",
        "error_revocation_unknown": "The certificate's status could not be confirmed.",
        "error_signature_invalid": "The card's signature could not be verified.",
        "error_card_mismatch": "A different card was used part-way through. Start over.",
        "error_transaction_closed": "This sign-in has already ended.",
        "error_transaction_not_found": "This sign-in was not found.",
        "error_nonce_used": "This sign-in has already been answered.",
        "error_temporarily_unavailable": "The provider is temporarily unavailable. Try again "
        "later.",
        "error_internal_error": "Something went wrong in the app. Start over.",
        "error_default": "The sign-in failed. Start over.",
    },
}


def pick_locale(choice: str | None) -> str:
    """``choice`` if it is a supported locale, else Japanese."""
    return choice if choice is not None and choice in LOCALES else DEFAULT_LOCALE


def error_key(code: str | None) -> str:
    """The text key for an error code (``error_default`` for codes this app does not know)."""
    key = f"error_{code}"
    return key if code and key in TEXTS[DEFAULT_LOCALE] else "error_default"


def item_label(locale: str, item: str) -> str:
    """The name of a requested item (``name``, ``address``...); unknown items as they are."""
    key = f"item_{item}"
    return text(locale, key) if key in TEXTS[DEFAULT_LOCALE] else item


def text(locale: str, key: str, **values: object) -> str:
    template = TEXTS.get(locale, TEXTS[DEFAULT_LOCALE])[key]
    return template.format(**values) if values else template
