"""The web page in a real browser: Debian's headless Chromium driven by Selenium, against asr serve on loopback.

Upload a file, read the transcript from the page, click a word to play from it, download subtitles, record from
the microphone and transcribe it live (Chromium's fake capture device plays a test wav), and screenshots at
desktop and phone width. The model knows the test sentences by heart, so the page must show their words.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.audio import read_audio

pytest.importorskip("selenium")
if not (shutil.which("chromium") and shutil.which("chromedriver")):
    pytest.skip("Debian's chromium and chromium-driver are not installed (make system)", allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from tests.test_serve import start_server  # noqa: E402

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def page(streaming_model, speech, tmp_path_factory):
    proc, url = start_server(streaming_model, "--chunk", "0.32", "--right-context", "0.16")
    root = tmp_path_factory.mktemp("browser")
    mic = root / "mic.wav"  # what the fake microphone plays (in a loop): three sentences with pauses
    gap = np.zeros(12000, np.float32)
    waves = [read_audio(p) for p, _ in speech[:3]]
    sf.write(mic, np.concatenate([gap] + [x for w in waves for x in (w, gap)]), 16000)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 f"--use-file-for-fake-audio-capture={mic}", "--autoplay-policy=no-user-gesture-required",
                 f"--user-data-dir={root / 'profile'}"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": str(root / "downloads"),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=webdriver.ChromeService(shutil.which("chromedriver")), options=options)
    driver.set_window_size(1280, 900)
    yield driver, url, root
    driver.quit()
    proc.terminate()
    proc.wait(timeout=10)


def wait_for_transcript(driver, timeout: float = 30.0) -> str:
    WebDriverWait(driver, timeout).until(lambda d: d.find_element(By.ID, "status").text.startswith(("Done", "No ",
                                                                                                     "The ")))
    assert driver.find_element(By.ID, "status").text.startswith("Done"), driver.find_element(By.ID, "status").text
    return driver.find_element(By.ID, "transcript").text


def test_upload_read_click_download_and_screenshots(page, speech):
    driver, url, root = page
    driver.get(url + "/")
    assert driver.title.startswith("asr")
    driver.find_element(By.ID, "file").send_keys(str(speech[2][0]))
    text = wait_for_transcript(driver)
    words = driver.find_elements(By.CSS_SELECTOR, "#transcript .w")
    assert text.strip() and len(words) == len(text.split())
    assert float(driver.find_element(By.ID, "duration").text.split()[0]) == pytest.approx(
        sf.info(str(speech[2][0])).duration, abs=0.1)
    assert float(driver.find_element(By.ID, "rtf").text) >= 0
    # Click the last word: the player jumps there and the word is marked.
    last = words[-1]
    marked = driver.execute_script("arguments[0].click(); return arguments[0].className", last)
    assert "now" in marked  # marked at once; playback moves the mark on as it goes
    time.sleep(0.3)
    position = driver.execute_script("return document.getElementById('player').currentTime")
    assert position >= float(last.get_attribute("data-start")) - 0.05
    # Download the subtitles.
    driver.find_element(By.CSS_SELECTOR, ".downloads button[data-format=srt]").click()
    srt_file = root / "downloads" / f"{Path(speech[2][0]).stem}.srt"
    for _ in range(50):
        if srt_file.is_file() and srt_file.stat().st_size:
            break
        time.sleep(0.1)
    import srt

    cues = list(srt.parse(srt_file.read_text()))
    assert " ".join(c.content for c in cues) == " ".join(w.text for w in words)
    driver.save_screenshot(str(root / "desktop.png"))
    driver.set_window_size(390, 844)
    driver.save_screenshot(str(root / "phone.png"))
    width = driver.execute_script("return document.documentElement.scrollWidth")
    assert width <= 390  # nothing wider than a phone's screen
    driver.set_window_size(1280, 900)


def test_record_from_the_microphone(page):
    driver, url, root = page
    driver.get(url + "/")
    driver.find_element(By.ID, "record").click()
    WebDriverWait(driver, 10).until(lambda d: "Stop" in d.find_element(By.ID, "record").text)
    time.sleep(2.5)
    driver.find_element(By.ID, "record").click()
    wait_for_transcript(driver)
    duration = float(driver.find_element(By.ID, "duration").text.split()[0])
    assert 1.5 < duration < 5  # the recording reached the server as webm/opus and was decoded
    driver.save_screenshot(str(root / "recorded.png"))


# Records what the transcript box shows at each change while live: (the partial node's text, finals shown, the
# partial node is the box's last child and the only one).
WATCH_LIVE = """
window.liveLog = [];
new MutationObserver(() => {
  const box = document.getElementById("transcript");
  const partials = box.querySelectorAll(".partial");
  window.liveLog.push([partials.length ? partials[0].textContent : null, box.querySelectorAll("p:not(.partial)").length,
                       partials.length === 1 && box.lastElementChild === partials[0]]);
}).observe(document.getElementById("transcript"), { childList: true, subtree: true, characterData: true });
"""


def test_live_transcription_shows_words_while_the_microphone_plays(page, speech):
    """Partial words show before their utterance's final, in one partial node updated in place; each final
    replaces them; stopping leaves the finals in order as clickable words with the recording. Every wait is for an
    event on the page (a loaded machine is slow, not wrong), with timeouts only for a page that never gets there."""
    driver, url, root = page
    driver.get(url + "/")
    driver.execute_script(WATCH_LIVE)
    driver.find_element(By.ID, "live").click()
    texts = [t for _, t in speech[:3]]
    WebDriverWait(driver, 120).until(lambda d: texts[0] in d.find_element(By.ID, "transcript").text)
    driver.save_screenshot(str(root / "live.png"))
    WebDriverWait(driver, 120).until(lambda d: texts[2] in d.find_element(By.ID, "transcript").text)
    driver.save_screenshot(str(root / "live_finals.png"))
    log = driver.execute_script("return window.liveLog")
    while_live = [entry for entry in log if entry[0] is not None]
    assert all(last for _, _, last in while_live)  # one partial node, always after the finals
    first_final = next(k for k, (_, finals, _) in enumerate(while_live) if finals)
    assert any(text.strip() for text, _, _ in while_live[:first_final]), log  # words before the utterance ended
    assert while_live[first_final][0] == "", log  # the final replaced the partial words
    driver.find_element(By.ID, "live").click()  # stop
    wait_for_transcript(driver, timeout=120)
    text = driver.find_element(By.ID, "transcript").text
    at = [text.find(t) for t in texts]
    assert -1 not in at and at == sorted(at), text  # the finals, in order
    words = driver.find_elements(By.CSS_SELECTOR, "#transcript .w")
    assert len(words) == len(text.split()) and not driver.find_elements(By.CSS_SELECTOR, "#transcript .partial")
    assert driver.execute_script("return document.getElementById('player').src").startswith("blob:")
