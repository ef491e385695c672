import Foundation
import Testing
@testable import CairnTrain

/// The GGUF container: every value type round trips, and damaged files are refused with the key or
/// tensor named — never a crash, a hang or a huge allocation.
@Suite("GGUF files: values, layout, damaged input")
struct GGUFFileTests {
    static func scratch(_ name: String) -> String {
        let dir = NSTemporaryDirectory() + "cairn-gguf-tests-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir + "/" + name
    }

    static let everyValue: [(String, GGUFValue)] = [
        ("general.architecture", .string("llama")), ("t.u8", .uint8(200)), ("t.i8", .int8(-100)), ("t.u16", .uint16(60000)),
        ("t.i16", .int16(-30000)), ("t.u32", .uint32(4_000_000_000)), ("t.i32", .int32(-2_000_000_000)),
        ("t.f32", .float32(1e-5)), ("t.bool", .bool(true)), ("t.str", .string("héllo ✓ <|im_end|>\n")),
        ("t.u64", .uint64(1 << 40)), ("t.i64", .int64(-(1 << 40))), ("t.f64", .float64(0.1)),
        ("t.strings", .array(.string, [.string("a"), .string(""), .string("Ġthe")])),
        ("t.ints", .array(.int32, [.int32(1), .int32(-3)])), ("t.empty", .array(.float32, [])),
        ("t.nested", .array(.array, [.array(.uint8, [.uint8(1)]), .array(.uint8, [])])),
    ]

    /// A small file: every value type, an F32 matrix, an F16 vector and a Q8_0 matrix.
    static func writeSample(_ path: String) throws -> [GGUFWriter.Entry] {
        let a = Tensor(shape: [3, 32], values: (0..<96).map { Float($0) * 0.25 - 7 })
        let b = Tensor(shape: [64], values: (0..<64).map { Float($0) / 8 })
        let c = Tensor(shape: [2, 64], values: (0..<128).map { sin(Float($0)) })
        let entries = [GGUFWriter.Entry(name: "a", tensor: a, type: .f32), GGUFWriter.Entry(name: "b", tensor: b, type: .f16),
                       GGUFWriter.Entry(name: "c", tensor: c, type: .q8_0)]
        try GGUFWriter.write(metadata: GGUFMetadata(file: path, entries: everyValue), tensors: entries, to: path)
        return entries
    }

    @Test func everyValueTypeAndTensorRoundTrips() throws {
        let path = Self.scratch("sample.gguf")
        let entries = try Self.writeSample(path)
        let f = try GGUFFile(path: path)
        #expect(f.version == 3)
        #expect(f.metadata.keys == Self.everyValue.map(\.0))
        for (k, v) in Self.everyValue { #expect(f.metadata[k] == v, "\(k)") }
        #expect(f.tensors.map(\.name) == ["a", "b", "c"])
        #expect(f.info("a")?.dimensions == [32, 3])
        #expect(f.tensors.allSatisfy { $0.offset % 32 == 0 } && f.dataOffset % 32 == 0)
        #expect(try f.tensor("a").toArray() == entries[0].tensor.toArray())
        #expect(try f.tensor("b").toArray() == entries[1].tensor.toArray())  // exact in f16
        let c = try f.tensor("c"), ref = entries[2].tensor
        for i in 0..<c.count { #expect(abs(c[i] - ref[i]) <= 1.0 / 127 + 1e-6) }
    }

    @Test func versionTwoReads() throws {
        let path = Self.scratch("v2.gguf")
        _ = try Self.writeSample(path)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[4] = 2
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(try GGUFFile(path: path).version == 2)
    }

    /// Writes the sample, lets `damage` change its bytes, and expects a FormatError whose text holds `expected`.
    func expectRefused(_ name: String, _ expected: String, sourceLocation: SourceLocation = #_sourceLocation,
                       _ damage: (inout [UInt8], GGUFFile) -> Void) throws {
        let path = Self.scratch(name)
        _ = try Self.writeSample(path)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        damage(&bytes, try GGUFFile(path: path))
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        do {
            let f = try GGUFFile(path: path)
            for t in f.tensors { _ = try f.tensor(t.name) }
            Issue.record("\(name): the damaged file was read", sourceLocation: sourceLocation)
        } catch let e as FormatError {
            #expect(e.description.contains(expected), "\(name): \(e)", sourceLocation: sourceLocation)
            #expect(e.description.hasPrefix(path), sourceLocation: sourceLocation)
        }
    }

    static func put64(_ v: UInt64, _ bytes: inout [UInt8], at i: Int) {
        for k in 0..<8 { bytes[i + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) }
    }
    static func put32(_ v: UInt32, _ bytes: inout [UInt8], at i: Int) {
        for k in 0..<4 { bytes[i + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(k))) }
    }
    /// Byte offset of the first occurrence of `needle`.
    static func find(_ needle: String, in bytes: [UInt8]) -> Int {
        let n = Array(needle.utf8)
        return (0...(bytes.count - n.count)).first { bytes[$0..<$0 + n.count].elementsEqual(n) }!
    }

    @Test func damagedHeadersAreNamed() throws {
        try expectRefused("magic.gguf", "is not a GGUF file") { b, _ in b[0] = UInt8(ascii: "X") }
        try expectRefused("version.gguf", "version 4") { b, _ in b[4] = 4 }
        try expectRefused("bigendian.gguf", "big-endian") { b, _ in b[4] = 0; b[7] = 3 }
        try expectRefused("count.gguf", "tensor count") { b, _ in Self.put64(1 << 50, &b, at: 8) }
        try expectRefused("kvcount.gguf", "metadata count") { b, _ in Self.put64(1 << 40, &b, at: 16) }
        // The string value of t.str claims 2^40 bytes.
        try expectRefused("string.gguf", "key 't.str' is a string of length") { b, _ in
            let at = Self.find("héllo", in: b) - 8
            Self.put64(1 << 40, &b, at: at)
        }
        try expectRefused("vtype.gguf", "key 't.u8' has unknown value type 99") { b, _ in
            Self.put32(99, &b, at: Self.find("t.u8", in: b) + 4)
        }
        try expectRefused("array.gguf", "key 't.ints' is an array of") { b, _ in
            Self.put64(1 << 60, &b, at: Self.find("t.ints", in: b) + 6 + 4 + 4)
        }
        try expectRefused("bool.gguf", "key 't.bool' is a bool with byte value 7") { b, _ in b[Self.find("t.bool", in: b) + 6 + 4] = 7 }
    }

    @Test func damagedTensorInfosAreNamed() throws {
        // Tensor infos: name "c" (u64 length 1, "c"), u32 n_dims, u64 dims…, u32 type, u64 offset.
        /// The byte after tensor `name`'s name in the infos (found searching back from the data section).
        func infoStart(_ b: [UInt8], _ f: GGUFFile, _ name: Character) -> Int {
            let needle: [UInt8] = [1, 0, 0, 0, 0, 0, 0, 0, name.asciiValue!]
            var i = f.dataOffset - needle.count
            while i > 0, !b[i..<i + needle.count].elementsEqual(needle) { i -= 1 }
            return i + needle.count
        }
        try expectRefused("type.gguf", "tensor 'c' has unknown ggml type 77") { b, f in
            Self.put32(77, &b, at: infoStart(b, f, "c") + 4 + 16)
        }
        try expectRefused("offset.gguf", "tensor 'c' starts at data offset") { b, f in
            Self.put64(1 << 30, &b, at: infoStart(b, f, "c") + 4 + 16 + 4)
        }
        try expectRefused("misaligned.gguf", "not a multiple of the alignment") { b, f in
            Self.put64(UInt64(f.info("c")!.offset + 4), &b, at: infoStart(b, f, "c") + 4 + 16 + 4)
        }
        try expectRefused("shape.gguf", "tensor 'c' (Q8_0, shape [20, 64]) ends at data byte") { b, f in
            Self.put64(20, &b, at: infoStart(b, f, "c") + 4 + 8)
        }
        try expectRefused("block.gguf", "tensor 'c' has a first dimension of 48") { b, f in
            Self.put64(48, &b, at: infoStart(b, f, "c") + 4)
        }
        try expectRefused("dims.gguf", "tensor 'c' has 9 dimensions") { b, f in
            Self.put32(9, &b, at: infoStart(b, f, "c"))
        }
        try expectRefused("overlap.gguf", "overlaps tensor") { b, f in
            Self.put64(UInt64(f.info("b")!.offset), &b, at: infoStart(b, f, "c") + 4 + 16 + 4)
        }
        try expectRefused("unsupported.gguf", "tensor 'c' has type Q2_K, which Cairn cannot dequantize") { b, f in
            // c as one Q2_K row of 256 elements (84 bytes, inside its 136).
            let at = infoStart(b, f, "c")
            Self.put64(256, &b, at: at + 4)
            Self.put64(1, &b, at: at + 12)
            Self.put32(GGMLType.q2_K.rawValue, &b, at: at + 20)
        }
    }

    /// Every prefix of a file that cuts into its header or its tensors is refused with a message, not
    /// a crash (the zero padding after the last tensor is not needed).
    @Test func everyTruncationIsRefused() throws {
        let path = Self.scratch("trunc-src.gguf")
        _ = try Self.writeSample(path)
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let f = try GGUFFile(path: path)
        let end = f.tensors.map { f.dataOffset + $0.offset + $0.byteCount }.max()!
        let cut = Self.scratch("trunc.gguf")
        var refused = 0
        for n in stride(from: 0, to: end, by: 7) {
            try Data(bytes[0..<n]).write(to: URL(fileURLWithPath: cut))
            do {
                _ = try GGUFFile(path: cut)
                Issue.record("a file cut to \(n) of \(bytes.count) bytes was read")
            } catch let e as FormatError {
                #expect(!e.message.isEmpty)
                refused += 1
            }
        }
        #expect(refused == (end + 6) / 7)
    }

    @Test func unsupportedArchitectureAndRopeAreNamed() throws {
        let src = try GGUFFile(path: fixturePath("gguf/model/llama/mixed.gguf"))
        func rewritten(_ change: (inout GGUFMetadata) -> Void) throws -> GGUFFile {
            var m = src.metadata
            change(&m)
            let path = Self.scratch("arch.gguf")
            let entries = try src.tensors.map { GGUFWriter.Entry(name: $0.name, tensor: try src.tensor($0.name), type: .f32) }
            try GGUFWriter.write(metadata: m, tensors: entries, to: path)
            return try GGUFFile(path: path)
        }
        let gemma = try rewritten { $0["general.architecture"] = .string("gemma") }
        #expect(throws: FormatError.self) { try GGUFModel.config(of: gemma) }
        do { _ = try GGUFModel.config(of: gemma) } catch { #expect("\(error)".contains("key 'general.architecture' is \"gemma\"")) }
        let yarn = try rewritten { $0["llama.rope.scaling.type"] = .string("yarn") }
        do { _ = try GGUFModel.config(of: yarn); Issue.record("yarn accepted") } catch {
            #expect("\(error)".contains("key 'llama.rope.scaling.type' is \"yarn\""))
        }
        let noHeads = try rewritten { $0["llama.attention.head_count"] = nil }
        do { _ = try GGUFModel.config(of: noHeads); Issue.record("missing head_count accepted") } catch {
            #expect("\(error)".contains("key 'llama.attention.head_count' is missing"))
        }
    }
}
