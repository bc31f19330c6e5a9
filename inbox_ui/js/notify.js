// Desktop notification and a short sound when a contact writes and the operator is not
// already looking at that thread.

import { contactName } from "./dom.js";
import { t } from "./i18n.js";

let audio = null;

function beep() {
  try {
    audio = audio || new AudioContext();
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.15, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + 0.25);
    osc.connect(gain).connect(audio.destination);
    osc.start();
    osc.stop(audio.currentTime + 0.25);
  } catch { /* no audio device: the notification is enough */ }
}

export function notify(message, conversation) {
  const looking = !document.hidden && location.hash === `#/c/${message.conversation_id}`;
  if (looking) return;
  beep();
  if ("Notification" in window && Notification.permission === "granted" && document.hidden) {
    const title = conversation ? contactName(conversation.contact) : t("notify.new_message");
    const n = new Notification(title, { body: message.text.slice(0, 200), tag: `conversation-${message.conversation_id}` });
    n.onclick = () => { window.focus(); location.hash = `#/c/${message.conversation_id}`; };
  }
}
