"""End to end: headless Chromium, driven by Selenium, against a live server.

Needs Debian's ``chromium`` and ``chromium-driver`` (``/usr/bin/chromium``
and ``/usr/bin/chromedriver``) and Selenium from PyPI. The driver path is
given explicitly, so Selenium Manager never tries to download one.

With ``CHAT_SCREENSHOTS_DIR`` set (for example to ``docs/_static/tutorial``)
the tests also save the screenshots used by the tutorial there.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from channels.testing import ChannelsLiveServerTestCase
from django.contrib.auth import get_user_model
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.wait import WebDriverWait

from chat.models import RoomStats

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # A fixed size, so that the screenshots are the same from run to run.
    "--window-size=1000,720",
]
#: Seconds to wait for the page to react (a message to arrive, a page to load).
WAIT = 5


def start_chromium(profile_directory: str) -> WebDriver:
    options = Options()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    # A fresh profile: no cookies or cache from anything else.
    options.add_argument(f"--user-data-dir={profile_directory}")
    return webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))


class ChatBrowserTests(ChannelsLiveServerTestCase):
    """The tutorial's end-to-end tests, plus logged-in users and odd room names."""

    serve_static = True  # room.js, as runserver would serve it

    driver: ClassVar[WebDriver]
    _profile: ClassVar[tempfile.TemporaryDirectory[str]]

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls._profile = tempfile.TemporaryDirectory(prefix="chat-chromium-")
        try:
            cls.driver = start_chromium(cls._profile.name)
        except BaseException:
            cls._profile.cleanup()
            super().tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        try:
            cls.driver.quit()
        finally:
            cls._profile.cleanup()
            super().tearDownClass()

    def setUp(self) -> None:
        super().setUp()
        # Every test starts logged out, in a single window.
        self.driver.get(self.live_server_url + "/chat/")
        self.driver.delete_all_cookies()

    def tearDown(self) -> None:
        self._close_all_new_windows()
        super().tearDown()

    # -- the tutorial's two tests, in rooms whose names are not group names ----

    def test_message_is_seen_by_everyone_in_the_same_room(self) -> None:
        self._enter_room("room 1")
        self._open_new_window()
        self._enter_room("room 1")

        self._switch_to_window(0)
        self._post("hello")

        self._wait_for(lambda: "anonymous: hello" in self._chat_log(), "not seen by window 1")
        self._switch_to_window(1)
        self._wait_for(lambda: "anonymous: hello" in self._chat_log(), "not seen by window 2")

    def test_message_is_not_seen_in_another_room(self) -> None:
        self._enter_room("café")
        self._open_new_window()
        self._enter_room("cafe")  # same readable slug, different room

        self._switch_to_window(0)
        self._post("hello")
        self._wait_for(lambda: "hello" in self._chat_log(), "not seen by window 1")
        self._switch_to_window(1)
        self._post("world")
        self._wait_for(lambda: "world" in self._chat_log(), "not seen by window 2")

        # "hello" went out first: had it reached this room, it would be here by now.
        assert "hello" not in self._chat_log()

    # -- beyond the tutorial -----------------------------------------------------

    def test_logged_in_users_name_is_on_their_messages(self) -> None:
        get_user_model().objects.create_user(username="alice", password="correct-horse-9")
        self._log_in("alice", "correct-horse-9")
        self._enter_room("lobby")
        self._open_new_window()
        self._enter_room("lobby")  # the same browser: the same session, alice too

        self._post("hi, it is alice")

        self._wait_for(lambda: "alice: hi, it is alice" in self._chat_log(), "not signed")
        self._switch_to_window(0)
        self._wait_for(lambda: "alice: hi, it is alice" in self._chat_log(), "not seen")
        self._post("and again")
        self._wait_for(lambda: "alice: and again" in self._chat_log(), "not seen")
        assert "anonymous" not in self._chat_log()
        self._screenshot("room.png")

    def test_unusable_room_name_is_explained(self) -> None:
        self.driver.get(self.live_server_url + "/chat/")
        self._find("room-name-input").send_keys("x" * 101 + "\n")

        error = self._wait_for_element("room-name-error")
        assert "at most 100 characters long; this one has 101" in error.text
        self._screenshot("refused.png")

        self.driver.get(self.live_server_url + "/chat/" + "y" * 120 + "/")
        status = self._find("chat-status")
        assert status.get_attribute("data-state") == "refused"
        assert "this one has 120" in status.text

    def test_index_shows_message_counts(self) -> None:
        RoomStats.objects.create(room_name="lobby", message_count=42)
        RoomStats.objects.create(room_name="café au lait", message_count=7)

        self.driver.get(self.live_server_url + "/chat/")

        rows = [
            row.text for row in self.driver.find_elements(By.CSS_SELECTOR, "#room-stats tbody tr")
        ]
        assert rows == ["lobby 42", "café au lait 7"]
        self._find("room-stats").find_element(By.LINK_TEXT, "café au lait").click()
        self._wait_for(lambda: self._status_state() == "open", "the room did not connect")
        self._screenshot("index.png", page="/chat/")

    # -- helpers ---------------------------------------------------------------

    def _find(self, element_id: str) -> Any:
        return self.driver.find_element(By.ID, element_id)

    def _wait_for(self, condition: Callable[[], bool], message: str) -> None:
        WebDriverWait(self.driver, WAIT).until(lambda _: condition(), message)

    def _wait_for_element(self, element_id: str) -> Any:
        return WebDriverWait(self.driver, WAIT).until(
            lambda driver: driver.find_element(By.ID, element_id),
            f"no element #{element_id}",
        )

    def _status_state(self) -> str | None:
        return self._find("chat-status").get_attribute("data-state")  # type: ignore[no-any-return]

    def _enter_room(self, room_name: str) -> None:
        self.driver.get(self.live_server_url + "/chat/")
        self._find("room-name-input").send_keys(room_name + "\n")
        self._wait_for(
            lambda: (
                self.driver.current_url.startswith(self.live_server_url + "/chat/")
                and self.driver.current_url != self.live_server_url + "/chat/"
            ),
            f"the form did not lead to the room {room_name!r}",
        )
        self._wait_for(
            lambda: self._status_state() == "open", f"the socket for {room_name!r} did not open"
        )
        assert self._find("room-title").text == room_name

    def _post(self, message: str) -> None:
        self._find("chat-message-input").send_keys(message + "\n")

    def _chat_log(self) -> str:
        return self._find("chat-log").get_property("value")  # type: ignore[no-any-return]

    def _log_in(self, username: str, password: str) -> None:
        self.driver.get(self.live_server_url + "/accounts/login/?next=/chat/")
        self._find("id_username").send_keys(username)
        self._find("id_password").send_keys(password)
        self._find("login-submit").click()
        assert self._wait_for_element("current-user").text == username

    def _open_new_window(self) -> None:
        self.driver.switch_to.new_window("window")

    def _switch_to_window(self, index: int) -> None:
        self.driver.switch_to.window(self.driver.window_handles[index])

    def _close_all_new_windows(self) -> None:
        while len(self.driver.window_handles) > 1:
            self._switch_to_window(-1)
            self.driver.close()
        self._switch_to_window(0)

    def _screenshot(self, name: str, page: str | None = None) -> None:
        directory = os.environ.get("CHAT_SCREENSHOTS_DIR")
        if not directory:
            return
        if page is not None:
            self.driver.get(self.live_server_url + page)
        Path(directory).mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(Path(directory) / name))
