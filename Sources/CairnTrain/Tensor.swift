/// A dense fp32 tensor, row-major and contiguous. Its memory is owned (allocated and zeroed
/// here) or borrowed from an owner that keeps it alive (a memory-mapped safetensors file, whose
/// F32 tensors are used in place). Its memory is reached from outside CairnTrain through the
/// subscript and `toArray()` only: no public API shows a pointer.
public final class Tensor: @unchecked Sendable {
    public let shape: [Int]
    public let count: Int
    /// The elements. Writable: borrowed memory is mapped copy-on-write.
    let data: UnsafeMutablePointer<Float>
    private let owner: AnyObject?
    private let owned: Bool

    /// A zero-filled tensor.
    public init(shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        count = shape.reduce(1, *)
        data = .allocate(capacity: max(count, 1))
        data.initialize(repeating: 0, count: max(count, 1))
        owner = nil
        owned = true
    }

    /// A tensor holding a copy of `values`.
    public convenience init(shape: [Int], values: [Float]) {
        self.init(shape: shape)
        precondition(values.count == count, "\(values.count) values for shape \(shape)")
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: count) }
    }

    /// A tensor over memory that `owner` keeps alive (no copy).
    init(shape: [Int], borrowing pointer: UnsafeMutablePointer<Float>, owner: AnyObject) {
        self.shape = shape
        count = shape.reduce(1, *)
        data = pointer
        self.owner = owner
        owned = false
    }

    deinit { if owned { data.deallocate() } }

    public var isBorrowed: Bool { !owned }

    public subscript(_ i: Int) -> Float {
        get { data[i] }
        set { data[i] = newValue }
    }

    var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: data, count: count) }
    public func toArray() -> [Float] { Array(buffer) }

    /// An owned copy.
    public func copy() -> Tensor {
        let t = Tensor(shape: shape)
        t.data.update(from: data, count: count)
        return t
    }

    public func zero() { data.update(repeating: 0, count: count) }

    /// The same elements seen with another shape of the same size (a copy).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        let t = Tensor(shape: newShape)
        t.data.update(from: data, count: count)
        return t
    }

    /// Largest |a - b| over all elements.
    public func maxAbsDifference(_ other: Tensor) -> Float {
        precondition(count == other.count)
        var m: Float = 0
        for i in 0..<count { m = max(m, abs(data[i] - other.data[i])) }
        return m
    }
}
