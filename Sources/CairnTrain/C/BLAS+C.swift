// The only file of CairnTrain that calls OpenBLAS.
import CairnSystem
import COpenBLAS
import Foundation

/// Matrix products on OpenBLAS (cblas_sgemm), with the thread count chosen per shape.
public enum BLAS {
    /// Threads OpenBLAS may use for big products (all cores unless CAIRN_THREADS says otherwise).
    public static let maxThreads: Int = {
        if let s = ProcessInfo.processInfo.environment["CAIRN_THREADS"], let n = Int(s), n > 0 { return n }
        return ProcessInfo.processInfo.activeProcessorCount
    }()

    nonisolated(unsafe) private static var currentThreads = -1

    /// Tiny products (under 1 MFLOP) run on one thread: waking a second costs more than it saves.
    /// Large ones run on `maxThreads`. Skinny ones (a dimension of 32 or less: a LoRA rank, one
    /// token) depend on the machine: on one Zen 5 machine two threads were slower, on this
    /// project's Zen 4 VM they are faster (1×896×4864: 2.24 ms on one, 0.98 ms on two). So the
    /// first product of each skinny shape is timed both ways and the faster count is kept.
    static func threads(m: Int, n: Int, k: Int) -> Int {
        let flops = 2.0 * Double(m) * Double(n) * Double(k)
        if flops < 1e6 || maxThreads == 1 { return 1 }
        return min(m, n, k) <= 32 ? -1 : maxThreads  // -1: calibrated per shape
    }

    private struct Shape: Hashable { let m, n, k: Int; let tA, tB: Bool }
    nonisolated(unsafe) private static var calibrated: [Shape: Int] = [:]
    private static let calibrationLock = NSLock()

    /// The thread count chosen for a skinny shape so far (nil until its first product).
    public static func calibratedThreads(m: Int, n: Int, k: Int, transA: Bool = false, transB: Bool = false) -> Int? {
        calibrationLock.lock(); defer { calibrationLock.unlock() }
        return calibrated[Shape(m: m, n: n, k: k, tA: transA, tB: transB)]
    }

    nonisolated(unsafe) private static var pinned = 0

    /// True inside `singleThreaded` / `withThreads` (e.g. inside a training step's workers).
    public static var isPinned: Bool { pinned > 0 }

    /// Runs `body` with OpenBLAS on one thread for every product (the caller runs its own
    /// workers). Call from one thread; nests.
    public static func singleThreaded<T>(_ body: () throws -> T) rethrows -> T { try withThreads(1, body) }

    /// Runs `body(w)` for w in 0 ..< n at once, one thread each, every product single-threaded
    /// (each worker runs its own products: on two cores that beats two OpenBLAS threads waiting on
    /// each other per product). Call from one thread; rethrows the first error (a `body` that
    /// cannot throw makes this call one that cannot). The one data-parallel driver of CairnTrain:
    /// the training step's shards, the prompts' pass, a few rows against a wide weight and the
    /// GGUF dequantisation all run through it.
    public static func workers<E: Error>(_ n: Int, _ body: (Int) throws(E) -> Void) throws(E) {
        var failure: E?
        let lock = NSLock()
        singleThreaded {
            DispatchQueue.concurrentPerform(iterations: n) { w in
                if case .failure(let error) = Result(catching: { () throws(E) in try body(w) }) {
                    lock.lock(); failure = failure ?? error; lock.unlock()
                }
            }
        }
        if let e = failure { throw e }
    }

    /// Runs `body` with every product on `n` threads (benchmarks compare thread counts with it).
    public static func withThreads<T>(_ n: Int, _ body: () throws -> T) rethrows -> T {
        setThreads(n)
        pinned += 1
        defer { pinned -= 1 }
        return try body()
    }

    private static func setThreads(_ n: Int) {
        if pinned > 0 { return }
        if n != currentThreads {
            openblas_set_num_threads(Int32(n))
            currentThreads = n
        }
    }

    /// C = alpha · op(A) · op(B) + beta · C, row-major. op(A) is (m, k), op(B) is (k, n), C is (m, n);
    /// lda/ldb/ldc are the row strides of A, B and C as stored.
    static func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                      a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                      beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m == 0 || n == 0 { return }
        if k == 0 {  // C = beta · C
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
            return
        }
        func call() {
            cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                        Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        }
        run(Shape(m: m, n: n, k: k, tA: transA, tB: transB), threads: threads(m: m, n: n, k: k), overwrites: beta == 0, call)
    }

    /// `sgemm` on tensors, for callers outside CairnTrain (benchmarks): the same product, with
    /// each matrix checked to lie inside its tensor.
    public static func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
                             a: Tensor, lda: Int, b: Tensor, ldb: Int, beta: Float = 0, c: Tensor, ldc: Int) {
        func fits(_ t: Tensor, rows: Int, cols: Int, ld: Int) -> Bool {
            rows == 0 || cols == 0 || (ld >= cols && (rows - 1) * ld + cols <= t.count)
        }
        precondition(fits(a, rows: transA ? k : m, cols: transA ? m : k, ld: lda), "A does not fit its tensor")
        precondition(fits(b, rows: transB ? n : k, cols: transB ? k : n, ld: ldb), "B does not fit its tensor")
        precondition(fits(c, rows: m, cols: n, ld: ldc), "C does not fit its tensor")
        sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a.data, lda: lda, b: b.data, ldb: ldb,
              beta: beta, c: c.data, ldc: ldc)
    }

    /// y (m or n) = alpha · op(A) · x + beta · y with A (m, n) row-major, op(A) = Aᵀ when `transA`.
    /// One row of a product (a token being generated): reads A once, where sgemm first copies
    /// A into panels — for one row, that copy costs more than the product.
    static func sgemv(transA: Bool, m: Int, n: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                      x: UnsafePointer<Float>, beta: Float = 0, y: UnsafeMutablePointer<Float>) {
        if m == 0 || n == 0 {  // y = beta · y
            for i in 0..<(transA ? n : m) { y[i] = beta == 0 ? 0 : beta * y[i] }
            return
        }
        func call() {
            cblas_sgemv(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), alpha, a, Int32(lda), x, 1, beta, y, 1)
        }
        // Always calibrated (a vector is the skinniest shape); k = 0 tells it from sgemm's shapes.
        run(Shape(m: m, n: n, k: 0, tA: transA, tB: false), threads: 2.0 * Double(m * n) < 1e6 || maxThreads == 1 ? 1 : -1,
            overwrites: beta == 0, call)
    }

    /// Runs a product on `threads` (−1: the count calibrated for `shape`, timed both ways on its
    /// first product when that product overwrites its output; accumulating ones run on one thread
    /// until a calibrated one has run).
    private static func run(_ shape: Shape, threads: Int, overwrites: Bool, _ call: () -> Void) {
        if pinned > 0 { call(); return }
        var t = threads
        if t == -1 {
            calibrationLock.lock(); let known = calibrated[shape]; calibrationLock.unlock()
            if let known = known {
                t = known
            } else if overwrites {
                // Time the product both ways (same inputs, same output: it is overwritten).
                var best = (threads: 1, seconds: Double.infinity)
                for candidate in [1, maxThreads] {
                    setThreads(candidate)
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    call()
                    let s = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                    if s < best.seconds { best = (candidate, s) }
                }
                calibrationLock.lock(); calibrated[shape] = best.threads; calibrationLock.unlock()
                return
            } else {
                t = 1
            }
        }
        setThreads(t)
        call()
    }

    /// This machine's fp32 peak as benchmarks quote it: the best of `reps` 2048³ sgemms on all
    /// threads, in GFLOP/s (the three matrices take 48 MiB while it runs).
    public static func sgemmPeakGFLOPS(n: Int = 2048, reps: Int = 3) -> Double {
        let a = Tensor(shape: [n, n]), b = Tensor(shape: [n, n]), c = Tensor(shape: [n, n])
        for i in 0..<a.count { a[i] = Float(i % 13) * 0.01; b[i] = Float(i % 7) * 0.01 }
        var best = Double.infinity
        for _ in 0..<reps {
            let t0 = DispatchTime.now().uptimeNanoseconds
            sgemm(transA: false, transB: false, m: n, n: n, k: n, a: a.data, lda: n, b: b.data, ldb: n, c: c.data, ldc: n)
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        return 2 * pow(Double(n), 3) / best / 1e9
    }

    /// The naive reference of `sgemm`, for tests.
    static func sgemmReference(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                               a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                               beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        for i in 0..<m {
            for j in 0..<n {
                var s: Double = 0
                for p in 0..<k {
                    let av = transA ? a[p * lda + i] : a[i * lda + p]
                    let bv = transB ? b[j * ldb + p] : b[p * ldb + j]
                    s += Double(av) * Double(bv)
                }
                let old = beta == 0 ? 0 : beta * c[i * ldc + j]
                c[i * ldc + j] = alpha * Float(s) + old
            }
        }
    }

    /// The OpenBLAS core type this CPU should use when OpenBLAS 0.3.21 does not recognise it:
    /// SkylakeX (AVX-512 kernels) where /proc/cpuinfo lists avx512f, avx512bw, avx512dq and
    /// avx512vl; nil otherwise (OpenBLAS's own choice stands).
    public static func preferredCoreType(cpuinfo: String? = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) -> String? {
        guard let info = cpuinfo, let flagsLine = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
        let flags = Set(flagsLine.split(separator: " ").map(String.init))
        return ["avx512f", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(flags.contains) ? "SkylakeX" : nil
    }

    /// Kernels that already use AVX-512.
    static let avx512Cores: Set<String> = ["skylakex", "cooperlake", "sapphirerapids"]

    /// OpenBLAS reads OPENBLAS_CORETYPE when it loads, before any Swift code runs. When OpenBLAS
    /// picked a kernel without AVX-512 on a CPU that has it (0.3.21 does not know AMD Zen 4/5),
    /// set the variable and re-execute this program with the same arguments (does not return
    /// then). A correct choice (Cooperlake on Zen 4) is left alone. CAIRN_NO_REEXEC=1 turns this off.
    public static func reexecWithPreferredCoreTypeIfNeeded() {
        let env = ProcessInfo.processInfo.environment
        guard env["OPENBLAS_CORETYPE"] == nil, env["CAIRN_NO_REEXEC"] == nil,
              !avx512Cores.contains(coreName.lowercased()), let core = preferredCoreType() else { return }
        Processes.reexecute(setting: "OPENBLAS_CORETYPE", to: core)
        // It returned: execv failed; carry on with OpenBLAS's own choice.
    }

    /// OpenBLAS's own description of the kernel it picked (e.g. "Haswell", "SkylakeX").
    public static var coreName: String { String(cString: openblas_get_corename()) }
    public static var configuration: String { String(cString: openblas_get_config()) }
}
