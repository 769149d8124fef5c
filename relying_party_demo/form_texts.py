"""The forms tool's words: Japanese first, English with ``?lang=en``."""

from __future__ import annotations

from typing import Final

__all__ = ["TEXTS", "text"]

TEXTS: Final[dict[str, tuple[str, str]]] = {
    "forms": ("電子申請フォーム", "Online forms"),
    "start": (
        "マイナンバーカードでログインして申請する",
        "Sign in with the My Number card to apply",
    ),
    "badge": ("マイナンバーカードで確認済み", "Verified with the My Number card"),
    "verified_at": ("確認日時", "Verified at"),
    "name": ("氏名", "Name"),
    "address": ("住所", "Address"),
    "birthdate": ("生年月日", "Date of birth"),
    "gender": ("性別", "Sex"),
    "male": ("男性", "male"),
    "female": ("女性", "female"),
    "other": ("その他・不明", "other / unknown"),
    "required": ("必須", "required"),
    "to_review": ("確認画面へ", "Review"),
    "review": ("申請内容の確認", "Review your application"),
    "edit": ("修正する", "Edit"),
    "sign_submit": ("カードで署名して提出", "Sign with the card and submit"),
    "sign_note": (
        "「カードで署名して提出」を押すと、スマートフォンでマイナンバーカードの署名用電子証明書"
        "（署名用パスワード）による電子署名を行います。",
        "Pressing the button signs the application with your My Number card's signature "
        "certificate (signature password) on your phone.",
    ),
    "submitted": ("申請を受け付けました", "Your application was received"),
    "submission_id": ("受付番号", "Submission number"),
    "signer": ("署名者", "Signer"),
    "signed_at": ("署名日時", "Signed at"),
    "signature_ok": ("電子署名を検証しました", "Signature verified"),
    "error": ("申請できませんでした", "The application could not be submitted"),
    "revoked": (
        "署名用電子証明書が失効しています。住所や氏名などの登録内容が変わった可能性があります。"
        "お住まいの市区町村の窓口で電子証明書を更新してください。",
        "Your signature certificate is revoked: your registered details may have changed. "
        "Please renew the certificate at your municipal office.",
    ),
    "not_signed": (
        "署名されていない申請は受け付けられません。",
        "An unsigned application is refused.",
    ),
    "staff": ("職員用：申請一覧", "Staff: submissions"),
    "staff_forms": ("職員用：フォームの管理", "Staff: forms"),
    "download_cms": ("署名 (.p7s)", "Signature (.p7s)"),
    "download_doc": ("申請データ (.json)", "Document (.json)"),
    "csv": ("CSV で書き出す", "Export CSV"),
    "back": ("最初に戻る", "Back to the start"),
    "fix_errors": ("入力内容を確認してください。", "Please check your answers."),
    "save_form": ("フォームを保存", "Save the form"),
    "verified": ("検証済み", "verified"),
}


def text(key: str, lang: str) -> str:
    ja, en = TEXTS[key]
    return en if lang == "en" else ja
