// The only file of CairnTrain that calls OpenBLAS.
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

    /// Skinny products (a LoRA rank, a single token) run slower on two threads than on one here:
    /// they get one thread; everything else gets `maxThreads`.
    static func threads(m: Int, n: Int, k: Int) -> Int {
        let flops = 2.0 * Double(m) * Double(n) * Double(k)
        return (min(m, n, k) <= 32 || flops < 4e6) ? 1 : maxThreads
    }

    nonisolated(unsafe) private static var pinned = 0

    /// Runs `body` with OpenBLAS on one thread for every product (the caller runs its own
    /// workers). Call from one thread; nests.
    public static func singleThreaded<T>(_ body: () throws -> T) rethrows -> T {
        setThreads(1)
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
    public static func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                             a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                             beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m == 0 || n == 0 { return }
        if k == 0 {  // C = beta · C
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
            return
        }
        setThreads(threads(m: m, n: n, k: k))
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// The naive reference of `sgemm`, for tests.
    public static func sgemmReference(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
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
        setenv("OPENBLAS_CORETYPE", core, 1)
        let args = CommandLine.arguments
        var cargs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        execv("/proc/self/exe", &cargs)
        // execv returned: it failed; carry on with OpenBLAS's own choice.
        for p in cargs { free(p) }
    }

    /// OpenBLAS's own description of the kernel it picked (e.g. "Haswell", "SkylakeX").
    public static var coreName: String { String(cString: openblas_get_corename()) }
    public static var configuration: String { String(cString: openblas_get_config()) }
}
