/// One worker's activations for a training step, carved out of one block (llm.c's
/// `malloc_and_point_activations`) instead of a dozen heap allocations per layer.
///
/// `reset()` starts a step; `take` hands out the next tensor of the block. The block is sized by
/// the first step of a shape: a step that needs more than the block holds gets the rest from the
/// heap and records how much it needed, and the next `reset()` grows the block to that — from the
/// second step of a shape on, a step allocates nothing. Tensors taken must not be used after the
/// next `reset()` (the step that took them is over by then).
final class ActivationArena {
    private var block: UnsafeMutablePointer<Float>?
    private(set) var capacity = 0
    private var used = 0, needed = 0
    /// Tensors of the last step that came from the heap (0 once the block fits the shape).
    private(set) var heapTensors = 0

    func reset() {
        if needed > capacity {
            block?.deallocate()
            block = .allocate(capacity: needed)
            capacity = needed
        }
        used = 0; needed = 0; heapTensors = 0
    }

    /// A tensor whose every element the caller writes before reading it (not zeroed).
    func take(_ shape: [Int]) -> Tensor {
        let n = shape.reduce(1, *), size = (max(n, 1) + 15) & ~15  // 64-byte aligned
        needed += size
        if let b = block, used + size <= capacity {
            defer { used += size }
            return Tensor(shape: shape, borrowing: b + used, owner: self)
        }
        heapTensors += 1
        return Tensor(shape: shape)
    }

    /// A zero-filled tensor (for gradients that are accumulated into).
    func takeZeroed(_ shape: [Int]) -> Tensor {
        let t = take(shape)
        if t.isBorrowed { t.zero() }
        return t
    }

    /// A copy of `t`.
    func copy(_ t: Tensor) -> Tensor {
        let c = take(t.shape)
        c.data.update(from: t.data, count: t.count)
        return c
    }

    deinit { block?.deallocate() }
}

extension Optional where Wrapped == ActivationArena {
    /// From the arena when there is one, else a fresh (zeroed) heap tensor.
    func take(_ shape: [Int]) -> Tensor { self?.take(shape) ?? Tensor(shape: shape) }
    func takeZeroed(_ shape: [Int]) -> Tensor { self?.takeZeroed(shape) ?? Tensor(shape: shape) }
    func copy(_ t: Tensor) -> Tensor { self?.copy(t) ?? t.copy() }
}
