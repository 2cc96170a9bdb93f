// A short alert tone from the Web Audio API (no sound file to serve), and vibration where
// the phone has it. Browsers allow sound only after a tap on the page: every page's sign-in
// or duty button counts as one.

let context: AudioContext | null = null;

export function unlockSound(): void {
  if (context === null && typeof AudioContext !== "undefined") context = new AudioContext();
  void context?.resume();
}

export function alertTone(times = 3): void {
  if (context === null) return;
  const start = context.currentTime;
  for (let i = 0; i < times; i++) {
    const osc = context.createOscillator();
    const gain = context.createGain();
    osc.frequency.value = i % 2 === 0 ? 880 : 660;
    gain.gain.value = 0.2;
    osc.connect(gain).connect(context.destination);
    osc.start(start + i * 0.35);
    osc.stop(start + i * 0.35 + 0.25);
  }
}

export function vibrate(): void {
  if ("vibrate" in navigator) navigator.vibrate([300, 150, 300, 150, 600]);
}
