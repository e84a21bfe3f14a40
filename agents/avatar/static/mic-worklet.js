// AudioWorklet processor: the microphone at the context's rate in, 16 kHz PCM16 LE out, in
// frames of `frameMs` (posted as transferable ArrayBuffers), with each frame's RMS level.
// Downsampling averages the input samples that fall in each output sample's span: a box
// low-pass that keeps speech clean enough for ASR and costs nothing.

class PcmDownsampler extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const { targetRate = 16000, frameMs = 20 } = options.processorOptions || {};
    this.step = sampleRate / targetRate; // input samples per output sample
    this.frameLength = Math.round((targetRate * frameMs) / 1000);
    this.frame = new Int16Array(this.frameLength);
    this.filled = 0;
    this.phase = 0;
    this.sum = 0;
    this.count = 0;
    this.energy = 0;
  }

  process(inputs) {
    const channels = inputs[0];
    if (!channels || channels.length === 0) return true;
    const input = channels[0];
    for (let i = 0; i < input.length; i++) {
      let x = input[i];
      // Several channels are averaged to mono.
      if (channels.length > 1) {
        for (let c = 1; c < channels.length; c++) x += channels[c][i];
        x /= channels.length;
      }
      this.sum += x;
      this.count += 1;
      this.phase += 1;
      if (this.phase >= this.step) {
        this.phase -= this.step;
        this.push(this.sum / this.count);
        this.sum = 0;
        this.count = 0;
      }
    }
    return true;
  }

  push(value) {
    const clipped = Math.max(-1, Math.min(1, value));
    this.frame[this.filled++] = clipped < 0 ? clipped * 0x8000 : clipped * 0x7fff;
    this.energy += clipped * clipped;
    if (this.filled === this.frameLength) {
      const level = Math.sqrt(this.energy / this.frameLength);
      const buffer = this.frame.buffer;
      this.port.postMessage({ pcm: buffer, level }, [buffer]);
      this.frame = new Int16Array(this.frameLength); // the old one went with the message
      this.filled = 0;
      this.energy = 0;
    }
  }
}

registerProcessor("pcm-downsampler", PcmDownsampler);
