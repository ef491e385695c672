/// One linear projection of the model (q/k/v/o, gate/up/down): y = x·Wᵀ + b, plus an optional
/// LoRA branch y += scaling · dropout(x)·Aᵀ·Bᵀ. W is (out, in) as transformers stores it.
final class Projection {
    let name: String  // "model.layers.0.self_attn.q_proj"
    /// Its module name, one of `PEFTKey.modules` ("q_proj").
    var module: String { String(name.split(separator: ".").last!) }
    let inFeatures: Int
    let outFeatures: Int
    let weight: Tensor
    let bias: Tensor?
    var lora: LoRAFactors?
    /// False: the LoRA branch is skipped (the base model alone, e.g. DPO's reference).
    var loraEnabled = true
    /// Labels this projection's dropout stream (unique within the model).
    let stream: UInt64

    init(name: String, weight: Tensor, bias: Tensor?, stream: UInt64) {
        self.name = name
        self.stream = stream
        outFeatures = weight.shape[0]
        inFeatures = weight.shape[1]
        self.weight = weight
        self.bias = bias
    }

    /// What backward needs from the LoRA branch: the dropped-out input (nil without dropout)
    /// and xa = scaling · dropout(x)·Aᵀ, (N, r).
    struct Saved {
        let dropped: Tensor?
        /// 0 where dropped, 1/(1−p) where kept.
        let mask: Tensor?
        let xa: Tensor
    }

    /// out (N, out) = x (N, in)·Wᵀ + b (+ LoRA). Dropout only when `dropout` is given (training).
    func forward(_ x: UnsafePointer<Float>, N: Int, out: UnsafeMutablePointer<Float>, dropout: DropoutStream?,
                 arena: ActivationArena? = nil) -> Saved? {
        LinearOp.forward(out: out, inp: x, weight: weight.data, bias: bias?.data, N: N, C: inFeatures, OC: outFeatures)
        guard let l = lora, loraEnabled else { return nil }
        var input = x
        var dropped: Tensor?, mask: Tensor?
        if l.dropout > 0, let ds = dropout {
            let d = arena.take([N, inFeatures]), m = arena.take([N, inFeatures])
            let keep = 1 / (1 - l.dropout)
            for r in 0..<N {
                var g = ds.base.derived(stream &* 0x1_0000_0001 &+ UInt64(ds.firstRow + r))
                for c in 0..<inFeatures {
                    let i = r * inFeatures + c
                    m[i] = g.uniform() < l.dropout ? 0 : keep
                    d[i] = x[i] * m[i]
                }
            }
            dropped = d; mask = m
            input = UnsafePointer(d.data)
        }
        let r = l.A.shape[0]
        let xa = arena.take([N, r])
        LinearOp.forward(out: xa.data, inp: input, weight: l.A.data, bias: nil, N: N, C: inFeatures, OC: r)
        for i in 0..<xa.count { xa[i] *= l.scaling }
        LinearOp.forward(out: out, inp: xa.data, weight: l.B.data, bias: nil, N: N, C: r, OC: outFeatures, accumulate: true)
        return Saved(dropped: dropped, mask: mask, xa: xa)
    }

    /// dx (N, in) += ∂/∂x; accumulates into `grads` the gradients of whatever trains.
    func backward(dout: UnsafePointer<Float>, x: UnsafePointer<Float>, N: Int, dx: UnsafeMutablePointer<Float>, saved: Saved?,
                  grads: GradientBuffers, arena: ActivationArena? = nil) {
        LinearOp.backward(dinp: dx, dweight: grads.of(weight)?.data, dbias: grads.of(bias)?.data, dout: dout, inp: x, weight: weight.data,
                          N: N, C: inFeatures, OC: outFeatures)
        guard let l = lora, let s = saved else { return }
        let r = l.A.shape[0]
        // dB += doutᵀ · xa ; dxa = scaling · dout·B
        let dxa = arena.takeZeroed([N, r])
        LinearOp.backward(dinp: dxa.data, dweight: grads.of(l.B)?.data, dbias: nil, dout: dout, inp: s.xa.data,
                          weight: l.B.data, N: N, C: r, OC: outFeatures)
        for i in 0..<dxa.count { dxa[i] *= l.scaling }
        // dA += dxaᵀ · dropout(x) ; d dropout(x) = dxa·A
        let input = s.dropped.map { UnsafePointer($0.data) } ?? x
        if let m = s.mask {
            let dd = arena.takeZeroed([N, inFeatures])
            LinearOp.backward(dinp: dd.data, dweight: grads.of(l.A)?.data, dbias: nil, dout: dxa.data, inp: input,
                              weight: l.A.data, N: N, C: inFeatures, OC: r)
            for i in 0..<dd.count { dx[i] += dd[i] * m[i] }
        } else {
            LinearOp.backward(dinp: dx, dweight: grads.of(l.A)?.data, dbias: nil, dout: dxa.data, inp: input,
                              weight: l.A.data, N: N, C: inFeatures, OC: r)
        }
    }
}
