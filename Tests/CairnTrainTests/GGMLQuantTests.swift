import Foundation
import Testing
@testable import CairnTrain

/// GGMLQuant against gguf-py (fixtures by Fixtures/gguf/quant/make_fixtures.py), the fast path
/// against the naive reference, and the edges: alignment, reading and writing exactly the bytes
/// of `count` elements, unsupported types, partial blocks.
/// `CAIRN_QUANT_BENCH=1 swift test --filter GGMLQuantTests/speed` prints the speed of both paths.
@Suite struct GGMLQuantTests {
    static let index: [String: Any] = {
        let data = try! Data(contentsOf: URL(fileURLWithPath: fixturePath("gguf/quant/index.json")))
        return try! JSONSerialization.jsonObject(with: data) as! [String: Any]
    }()

    static func bytes(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: fixturePath("gguf/quant/" + name))))
    }

    static func floats(_ name: String) throws -> [Float] {
        let b = try bytes(name)
        return b.withUnsafeBytes { raw in (0..<b.count / 4).map { raw.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) } }
    }

    static func type(_ name: String) -> GGMLType { GGMLType.allCases.first { $0.description == name }! }

    static func cases(_ key: String) -> [[String: Any]] { index[key] as! [[String: Any]] }

    typealias Dequantizer = (GGMLType, UnsafeRawPointer, Int, UnsafeMutablePointer<Float>) throws -> Void
    static let fast: Dequantizer = { try GGMLQuant.dequantize($0, $1, count: $2, into: $3) }
    static let reference: Dequantizer = { try GGMLQuant.dequantizeReference($0, $1, count: $2, into: $3) }

    /// Dequantises `bytes` with the source at byte offset `misalign` of a fresh buffer.
    static func run(_ f: Dequantizer, _ type: GGMLType, _ bytes: [UInt8], count: Int, misalign: Int = 0) throws -> [Float] {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: bytes.count + misalign, alignment: 64)
        defer { buffer.deallocate() }
        bytes.withUnsafeBytes { (buffer + misalign).copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        var out = [Float](repeating: .nan, count: count)
        try out.withUnsafeMutableBufferPointer { try f(type, buffer + misalign, count, $0.baseAddress!) }
        return out
    }

    /// Index of the first element whose bits differ (NaNs too: payloads must match), or nil.
    static func firstMismatch(_ a: [Float], _ b: [Float], nanAsEqual: Bool = false) -> Int? {
        guard a.count == b.count else { return min(a.count, b.count) }
        return a.indices.first { a[$0].bitPattern != b[$0].bitPattern && !(nanAsEqual && a[$0].isNaN && b[$0].isNaN) }
    }

    @Test func fixturesCoverEveryReadableType() {
        #expect(Set(Self.cases("dequantize").map { Self.type($0["type"] as! String) }) == Set(GGMLType.readable))
        #expect(Set(Self.cases("quantize").map { Self.type($0["type"] as! String) }) == Set(GGMLQuant.quantizable))
    }

    /// Fast path and reference both equal gguf-py's float32 bit for bit (NaN payloads included), at
    /// every alignment of the source.
    @Test(arguments: GGMLType.readable) func dequantizeMatchesGGUFPy(_ type: GGMLType) throws {
        let c = try #require(Self.cases("dequantize").first { $0["type"] as? String == type.description })
        #expect(c["ggml_type"] as? Int == Int(type.rawValue))
        let bytes = try Self.bytes(c["bytes"] as! String), gguf = try Self.floats(c["values"] as! String)
        let count = c["count"] as! Int
        // The one difference: numpy (so gguf-py) leaves an f16 signalling NaN signalling, ggml's
        // GGML_FP16_TO_FP32 (F16C or its portable fallback) makes it quiet. Cairn follows ggml.
        #expect(type != .f16 || gguf.contains { $0.isSignalingNaN }, "the F16 fixture has signalling NaNs")
        let want = type == .f16 ? gguf.map { $0.isSignalingNaN ? Float(bitPattern: $0.bitPattern | 0x40_0000) : $0 } : gguf
        #expect(bytes.count == type.byteCount(elements: count) && want.count == count)
        for misalign in [0, 1, 2, 3] {
            let got = try Self.run(Self.fast, type, bytes, count: count, misalign: misalign)
            if let i = Self.firstMismatch(got, want) {
                Issue.record("\(type) fast, misalign \(misalign): element \(i) is \(got[i]) (\(String(got[i].bitPattern, radix: 16))), gguf-py \(want[i]) (\(String(want[i].bitPattern, radix: 16)))")
            }
        }
        let ref = try Self.run(Self.reference, type, bytes, count: count, misalign: 1)
        if let i = Self.firstMismatch(ref, want) {
            Issue.record("\(type) reference: element \(i) is \(ref[i]), gguf-py \(want[i])")
        }
    }

    /// quantize equals gguf.quants.quantize byte for byte (F16/BF16 rounding ties, overflow, NaN;
    /// Q8_0 ties x·id = k + ½, zero and tiny blocks).
    @Test(arguments: GGMLQuant.quantizable) func quantizeMatchesGGUFPy(_ type: GGMLType) throws {
        let c = try #require(Self.cases("quantize").first { $0["type"] as? String == type.description })
        let input = try Self.floats(c["input"] as! String), want = try Self.bytes(c["bytes"] as! String)
        #expect(want.count == type.byteCount(elements: input.count))
        var got = [UInt8](repeating: 0xAA, count: want.count + 8)
        try input.withUnsafeBufferPointer { x in
            try got.withUnsafeMutableBytes { try GGMLQuant.quantize(type, x.baseAddress!, count: input.count, into: $0.baseAddress! + 1) }
        }
        #expect(got[0] == 0xAA && got[(want.count + 1)...].allSatisfy { $0 == 0xAA }, "wrote outside its bytes")
        let body = Array(got[1...want.count])
        if let i = body.indices.first(where: { body[$0] != want[$0] }) {
            Issue.record("\(type): byte \(i) is \(body[i]), gguf-py \(want[i])")
        }
    }

    /// Fast path == reference on many random blocks, every f16 field pattern included (±∞, NaN:
    /// compared as NaN), and on counts of 1…40 elements for the plain types (SIMD tails).
    @Test(arguments: GGMLType.readable) func fastMatchesReferenceOnRandomBlocks(_ type: GGMLType) throws {
        var rng = RandomGenerator(seed: UInt64(type.rawValue) &+ 17)
        let counts = type.blockSize == 1 ? Array(0...40) + [4099] : [type.blockSize, 200 * type.blockSize]
        for count in counts {
            let bytes = (0..<type.byteCount(elements: count)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let got = try Self.run(Self.fast, type, bytes, count: count, misalign: count % 3)
            let want = try Self.run(Self.reference, type, bytes, count: count)
            if let i = Self.firstMismatch(got, want, nanAsEqual: true) {
                Issue.record("\(type) count \(count): element \(i) fast \(got[i]), reference \(want[i])")
            }
        }
    }

    /// Every f16 and bf16 bit pattern: the branch-free SIMD conversion, the scalar one and Swift's
    /// Float16 (the reference) agree bit for bit, NaN payloads included.
    @Test func halfConversionsAreExactForEveryPattern() throws {
        let patterns = (0...0xFFFF).map { UInt16($0) }
        let bytes = patterns.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        for type in [GGMLType.f16, .bf16] {
            let got = try Self.run(Self.fast, type, bytes, count: patterns.count)
            let want = try Self.run(Self.reference, type, bytes, count: patterns.count)
            #expect(Self.firstMismatch(got, want) == nil, "\(type)")
        }
        #expect(patterns.allSatisfy { GGMLQuant.halfToFloat($0).bitPattern == Float(Float16(bitPattern: $0)).bitPattern })
    }

    /// The source ends where an inaccessible page begins (as a tensor at the end of a memory-mapped
    /// file may): any read past `byteCount(elements:)` would crash. Nothing past `out[count]` is written.
    @Test(arguments: GGMLType.readable) func readsAndWritesOnlyItsElements(_ type: GGMLType) throws {
        for count in type.blockSize == 1 ? [1, 15, 17, 33] : [type.blockSize, 3 * type.blockSize] {
            let size = type.byteCount(elements: count)
            let page = Int(sysconf(Int32(_SC_PAGESIZE)))
            let base = try #require(mmap(nil, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
            defer { munmap(base, 2 * page) }
            #expect(mprotect(base + page, page, PROT_NONE) == 0)
            let source = base + page - size
            memset(source, 0x11, size)
            var out = [Float](repeating: -7, count: count + 20)
            try out.withUnsafeMutableBufferPointer { o in
                try GGMLQuant.dequantize(type, source, count: count, into: o.baseAddress!)
                try GGMLQuant.dequantizeReference(type, source, count: count, into: o.baseAddress!)
            }
            #expect(out[count...].allSatisfy { $0 == -7 }, "\(type) count \(count)")
        }
    }

    @Test func unsupportedTypesThrowNamingThem() throws {
        var out = [Float](repeating: 0, count: 256), sink = [UInt8](repeating: 0, count: 1024)
        let source = [UInt8](repeating: 0, count: 1024)
        for type in GGMLType.allCases where !type.isReadable {
            for f in [Self.fast, Self.reference] {
                let error = #expect(throws: GGMLQuantError.self) {
                    try source.withUnsafeBytes { s in try out.withUnsafeMutableBufferPointer { try f(type, s.baseAddress!, type.blockSize, $0.baseAddress!) } }
                }
                #expect(error == .unsupported(type, .dequantize))
                #expect(error?.description.contains("has type \(type), which Cairn cannot dequantize") == true, "\(String(describing: error))")
            }
        }
        #expect(GGMLQuantError.unsupported(.iq2_xxs, .dequantize).description.contains("IQ2_XXS"))
        for type in GGMLType.allCases where !GGMLQuant.quantizable.contains(type) {
            let error = #expect(throws: GGMLQuantError.self) {
                try out.withUnsafeBufferPointer { x in
                    try sink.withUnsafeMutableBytes { try GGMLQuant.quantize(type, x.baseAddress!, count: type.blockSize, into: $0.baseAddress!) }
                }
            }
            #expect(error?.description.contains("has type \(type), which Cairn cannot quantize") == true)
        }
    }

    @Test func partialBlocksAreErrorsNotCrashes() throws {
        var out = [Float](repeating: 0, count: 512), sink = [UInt8](repeating: 0, count: 1024)
        let source = [UInt8](repeating: 0, count: 1024)
        for (type, count) in [(GGMLType.q4_0, 33), (.q8_0, 31), (.q4_K, 255), (.q6_K, 300), (.f16, -1), (.q5_1, -32)] {
            for f in [Self.fast, Self.reference] {
                let error = #expect(throws: GGMLQuantError.self) {
                    try source.withUnsafeBytes { s in try out.withUnsafeMutableBufferPointer { try f(type, s.baseAddress!, count, $0.baseAddress!) } }
                }
                #expect(error == .partialBlock(type, count: count))
            }
        }
        #expect(GGMLQuantError.partialBlock(.q4_0, count: 33).description == "has 33 elements, not a whole number of Q4_0 blocks of 32")
        let error = #expect(throws: GGMLQuantError.self) {
            try out.withUnsafeBufferPointer { x in
                try sink.withUnsafeMutableBytes { try GGMLQuant.quantize(.q8_0, x.baseAddress!, count: 40, into: $0.baseAddress!) }
            }
        }
        #expect(error == GGMLQuantError.partialBlock(.q8_0, count: 40))
    }

    /// Speed of both paths, printed (run by hand): 4M elements of random blocks (normal f16 fields),
    /// streaming to memory (16 MB out), and 16K elements dequantised over and over in L2.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["CAIRN_QUANT_BENCH"] != nil))
    func speed() throws {
        let count = 1 << 22
        var rng = RandomGenerator(seed: 99)
        var out = [Float](repeating: 0, count: count)
        for type in GGMLType.readable {
            let size = type.byteCount(elements: count)
            // Every 16 bits a normal f16 (exponent 4…14), as a model's d/m fields are.
            let bytes = (0..<size).map { _ in UInt8(truncatingIfNeeded: rng.next() & 0x3BFF_3BFF_3BFF_3BFF | 0x1000_1000_1000_1000) }
            /// Elements per second, best of `reps` runs of `passes` passes over the first n elements.
            func rate(_ f: Dequantizer, n: Int, passes: Int, reps: Int) throws -> Double {
                var best = Double.infinity
                for _ in 0..<reps {
                    let t = DispatchTime.now().uptimeNanoseconds
                    for _ in 0..<passes {
                        try bytes.withUnsafeBytes { s in try out.withUnsafeMutableBufferPointer { try f(type, s.baseAddress!, n, $0.baseAddress!) } }
                    }
                    best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t) / 1e9)
                }
                return Double(n * passes) / best
            }
            let bytesPerElement = Double(type.typeSize) / Double(type.blockSize)
            func cell(_ r: Double) -> String { String(format: "%6.0f MB/s %5.0f Me/s", r * bytesPerElement / 1e6, r / 1e6) }
            let stream = (try rate(Self.fast, n: count, passes: 1, reps: 5), try rate(Self.reference, n: count, passes: 1, reps: 2))
            let l2 = (try rate(Self.fast, n: 1 << 14, passes: 256, reps: 5), try rate(Self.reference, n: 1 << 14, passes: 64, reps: 3))
            print("GGMLQuant \(type.description.padding(toLength: 5, withPad: " ", startingAt: 0))"
                + " streaming: fast \(cell(stream.0)) ref \(cell(stream.1)) ×\(String(format: "%.1f", stream.0 / stream.1))"
                + "  in L2: fast \(cell(l2.0)) ref \(cell(l2.1)) ×\(String(format: "%.1f", l2.0 / l2.1))")
        }
        let x = (0..<count).map { _ in Float(Int64(bitPattern: rng.next() % 2000) - 1000) / 997 }
        for type in GGMLQuant.quantizable {
            var y = [UInt8](repeating: 0, count: type.byteCount(elements: count))
            let t = DispatchTime.now().uptimeNanoseconds
            try x.withUnsafeBufferPointer { s in try y.withUnsafeMutableBytes { try GGMLQuant.quantize(type, s.baseAddress!, count: count, into: $0.baseAddress!) } }
            let dt = Double(DispatchTime.now().uptimeNanoseconds - t) / 1e9
            print("GGMLQuant quantize \(type): \(String(format: "%.0f Melem/s", Double(count) / dt / 1e6))")
        }
    }
}
