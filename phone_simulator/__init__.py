"""The phone simulator (TEST ONLY): a small web app that plays the resident's phone.

It does what a real phone app does in the QR and same-device flows (docs/phone-app.md): reads
the QR frame (pasted, or handed over by the demo's login page), picks the login up with
``POST /device/v1/pickup``, shows who is asking and the verification code, takes PIN1 on a PIN
pad, drives a virtual My Number card through the real JPKI client APDU by APDU, and posts the
card response -- with the same device code as the desktop agent
(:mod:`idp.handoff.device_client`). From ``idp`` it uses only ``idp.card`` and that module; it
talks to the provider over the public device API only, so it is the reference for app builders.

- :mod:`phone_simulator.qr`: what a scan may contain (frame URL, app link), checked on the phone;
- :mod:`phone_simulator.provider`: the pickup over HTTP and the device client's HTTP;
- :mod:`phone_simulator.wallet`: the test residents' virtual cards, with lasting PIN counters;
- :mod:`phone_simulator.flow`: one login: the card thread and the screens it asks for;
- :mod:`phone_simulator.app`: the screens (Flask), ``python -m phone_simulator serve``.
"""

from phone_simulator.app import create_app

__all__ = ["create_app"]
