import Foundation

/// Rotary position embeddings, the half-split (rotate_half) convention of Llama/Qwen2 in
/// transformers: for i < D/2, (x_i, x_{i+D/2}) ↦ (x_i·cos − x_{i+D/2}·sin, x_{i+D/2}·cos + x_i·sin)
/// with angle position · θ^(−2i/D).
struct RoPETable {
    let halfDim: Int
    /// cos and sin, (positions, D/2).
    let cos: [Float]
    let sin: [Float]
    let positions: Int

    init(headDim: Int, theta: Double, positions: Int) {
        halfDim = headDim / 2
        self.positions = positions
        var c = [Float](repeating: 0, count: positions * halfDim), s = c
        for i in 0..<halfDim {
            // inv_freq in fp32 as transformers computes it, the angle in double.
            let invFreq = Float(1.0 / pow(theta, Double(2 * i) / Double(headDim)))
            for p in 0..<positions {
                let angle = Double(Float(p) * invFreq)
                c[p * halfDim + i] = Float(Foundation.cos(angle))
                s[p * halfDim + i] = Float(Foundation.sin(angle))
            }
        }
        cos = c; sin = s
    }
}

enum RoPEOp {
    /// Rotates x in place. x is (rows, nh, D); row r is at position positions[r].
    static func forward(_ x: UnsafeMutablePointer<Float>, positions: [Int], nh: Int, D: Int, table: RoPETable) {
        rotate(x, positions: positions, nh: nh, D: D, table: table, sinSign: 1)
    }

    /// The transpose of `forward`, in place on the gradient: the rotation by the opposite angle,
    /// dx_i = dy_i·cos + dy_{i+D/2}·sin, dx_{i+D/2} = dy_{i+D/2}·cos − dy_i·sin.
    static func backward(_ g: UnsafeMutablePointer<Float>, positions: [Int], nh: Int, D: Int, table: RoPETable) {
        rotate(g, positions: positions, nh: nh, D: D, table: table, sinSign: -1)
    }

    /// (v_i, v_{i+D/2}) ↦ (v_i·cos − v_{i+D/2}·s, v_{i+D/2}·cos + v_i·s) with s = sinSign·sin.
    private static func rotate(_ x: UnsafeMutablePointer<Float>, positions: [Int], nh: Int, D: Int, table: RoPETable, sinSign: Float) {
        let h = D / 2
        table.cos.withUnsafeBufferPointer { cosB in
            table.sin.withUnsafeBufferPointer { sinB in
                for (r, p) in positions.enumerated() {
                    let cs = cosB.baseAddress! + p * h, sn = sinB.baseAddress! + p * h
                    for head in 0..<nh {
                        let v = x + (r * nh + head) * D
                        for i in 0..<h {
                            let a = v[i], b = v[i + h], s = sinSign * sn[i]
                            v[i] = a * cs[i] - b * s
                            v[i + h] = b * cs[i] + a * s
                        }
                    }
                }
            }
        }
    }
}
