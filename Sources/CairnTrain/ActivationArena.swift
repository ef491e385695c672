/// One worker's activations for a training step, carved out of one block (llm.c's
/// `malloc_and_point_activations`) instead of a dozen heap allocations per layer.
///
/// `reset()` starts a step; `take` hands out the next tensor of the block, as a stack: `mark()`
/// and `release(to:)` give back everything taken since the mark (a layer's backward scratch,
/// reused by the next layer while it is still in cache). The block is sized by the first step of
/// a shape: a step that needs more than the block holds gets the rest from the heap and records
/// how much it needed at most, and the next `reset()` grows the block to that and a quarter more —
/// from the second step of a shape on, a step allocates nothing. Tensors taken must not be used after the next
/// `reset()` or a release below them.
final class ActivationArena {
    private var block: UnsafeMutablePointer<Float>?
    private(set) var capacity = 0
    /// The top of the stack and its highest point this step, in floats (heap fallbacks included).
    private var used = 0, highWater = 0
    /// Tensors of the last step that came from the heap (0 once the block fits the shape).
    private(set) var heapTensors = 0

    func reset() {
        if highWater > capacity {
            // A quarter more than this step needed: batches of examples vary in length, and
            // each growth costs a step's worth of fresh pages.
            block?.deallocate()
            Allocator.returnFreeMemory()  // the heap tensors of the step that sized the block
            capacity = highWater + highWater / 4
            block = .allocate(capacity: capacity)
        }
        used = 0; highWater = 0; heapTensors = 0
    }

    func mark() -> Int { used }
    func release(to mark: Int) { used = mark }

    /// A tensor whose every element the caller writes before reading it (not zeroed).
    func take(_ shape: [Int]) -> Tensor {
        let n = shape.reduce(1, *), size = (max(n, 1) + 15) & ~15  // 64-byte aligned
        let offset = used
        used += size
        highWater = max(highWater, used)
        if let b = block, used <= capacity { return Tensor(shape: shape, borrowing: b + offset, owner: self) }
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
