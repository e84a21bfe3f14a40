// The microphone: getUserMedia (echo cancellation and noise suppression on) into an
// AudioWorklet that sends 16 kHz PCM16 LE frames of 20 ms to `send`. Muting stops sending and
// disables the track, so the browser's own indicator says the mic is off too.

export const MIC_RATE_HZ = 16000;
const FRAME_MS = 20;

export class Mic {
  /**
   * @param {AudioContext} context shared with the player (one clock, one device)
   * @param {(pcm: ArrayBuffer) => void} send called with each frame while unmuted
   * @param {(level: number) => void} onLevel the RMS level (0..1) of each frame
   */
  constructor(context, send, onLevel = () => {}) {
    this.context = context;
    this.send = send;
    this.onLevel = onLevel;
    this.stream = null;
    this.node = null;
    this.source = null;
    this.sink = null;
    this.muted = false;
    this.framesSent = 0;
  }

  get started() {
    return this.stream !== null;
  }

  /** Ask for the microphone and start sending; throws with a readable message when refused. */
  async start() {
    if (this.stream) return;
    if (!window.isSecureContext || !navigator.mediaDevices || !this.context.audioWorklet) {
      throw Object.assign(new Error("insecure"), { insecure: true });
    }
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true,
               channelCount: 1 },
    });
    await this.context.audioWorklet.addModule("/static/mic-worklet.js");
    this.source = this.context.createMediaStreamSource(this.stream);
    this.node = new AudioWorkletNode(this.context, "pcm-downsampler", {
      numberOfInputs: 1, numberOfOutputs: 1, channelCount: 1, channelCountMode: "explicit",
      processorOptions: { targetRate: MIC_RATE_HZ, frameMs: FRAME_MS },
    });
    this.node.port.onmessage = ({ data }) => {
      if (this.muted) return;
      this.onLevel(data.level);
      this.framesSent += 1;
      this.send(data.pcm);
    };
    // Connected to the output through a silent gain, so the browser keeps pulling it.
    this.sink = this.context.createGain();
    this.sink.gain.value = 0;
    this.source.connect(this.node).connect(this.sink).connect(this.context.destination);
  }

  setMuted(muted) {
    this.muted = muted;
    for (const track of this.stream?.getAudioTracks() || []) track.enabled = !muted;
    if (muted) this.onLevel(0);
  }

  stop() {
    this.source?.disconnect();
    this.node?.disconnect();
    this.sink?.disconnect();
    this.node?.port.close();
    for (const track of this.stream?.getTracks() || []) track.stop();
    this.stream = this.node = this.source = this.sink = null;
  }
}
