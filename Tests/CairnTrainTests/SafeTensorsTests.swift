import Foundation
import Testing
@testable import CairnTrain

/// Fixtures made by `Fixtures/formats/make_fixtures.py` with the real `safetensors` and torch.
enum FormatFixtures {
    static let directory: String = {
        if let root = Bundle.module.resourcePath {
            let dir = root + "/Fixtures/formats"
            if FileManager.default.fileExists(atPath: dir) { return dir }
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().path + "/Fixtures/formats"
    }()

    static func path(_ name: String) -> String { directory + "/" + name }

    static func json(_ name: String) throws -> [String: Any] {
        let data = try #require(FileManager.default.contents(atPath: path(name)))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// values.json: bit patterns (NaN/Inf safe) of the source values and of what each file holds.
    static func bits(_ entry: String?, _ key: String) throws -> [UInt32] {
        var object = try json("values.json")
        if let entry { object = try #require(object[entry] as? [String: Any]) }
        let numbers = try #require(object[key] as? [NSNumber])
        return numbers.map { $0.uint32Value }
    }

    /// A fresh directory under the temp directory, removed after `body`.
    static func withTemporaryDirectory<T>(_ body: (String) throws -> T) throws -> T {
        let dir = NSTemporaryDirectory() + "cairn-formats-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        return try body(dir)
    }

    /// Where a developer asked the tests to leave Cairn-written files for make_fixtures.py's checks.
    static var exportDirectory: String? { ProcessInfo.processInfo.environment["CAIRN_FORMATS_EXPORT_DIR"] }
}

@Suite("safetensors")
struct SafeTensorsTests {
    typealias F = FormatFixtures

    // MARK: - Reading the fixtures

    @Test(arguments: [("f32", DType.f32), ("f16", .f16), ("bf16", .bf16)])
    func readsExactValuesOfEachDtype(file: String, dtype: DType) throws {
        let st = try SafeTensorsFile(path: F.path("\(file).safetensors"))
        #expect(st.names == ["matrix", "values"])
        #expect(st.metadata == ["format": "pt"])
        #expect(st.dtype("values") == dtype)
        let expected = try F.bits(file, "read_back_f32_bits")
        #expect(st.shape("values") == [expected.count])
        let values = try st.tensor("values")
        #expect(values.toArray().map(\.bitPattern) == expected)

        let matrix = try st.tensor("matrix")
        #expect(matrix.shape == [3, 4])
        #expect(matrix.toArray().map(\.bitPattern) == (try F.bits(file, "matrix_read_back_f32_bits")))
    }

    @Test func alignedF32IsBorrowedAndCopyOnWrite() throws {
        let path = F.path("f32.safetensors")
        let before = try #require(FileManager.default.contents(atPath: path))
        do {
            let st = try SafeTensorsFile(path: path)
            let t = try st.tensor("values")
            #expect(t.isBorrowed)
            t[0] = 12345  // a private page: the file must not change
            #expect(try st.tensor("values")[0] == 12345)  // same mapping, same memory
        }
        #expect(FileManager.default.contents(atPath: path) == before)
        #expect(try SafeTensorsFile(path: path).tensor("values")[0] == 0)
    }

    @Test func halfPrecisionIsConvertedIntoOwnedTensors() throws {
        for file in ["f16", "bf16"] {
            let t = try SafeTensorsFile(path: F.path("\(file).safetensors")).tensor("values")
            #expect(!t.isBorrowed, "\(file)")
        }
    }

    @Test func tensorOutlivesItsFileObject() throws {
        let t = try SafeTensorsFile(path: F.path("f32.safetensors")).tensor("matrix")
        #expect(t.isBorrowed)
        #expect(t.toArray() == (0..<12).map { Float($0) / 8 - 0.75 })
    }

    @Test func unalignedF32IsCopied() throws {
        try F.withTemporaryDirectory { dir in
            // 8 + 6-byte header: the data section starts at byte 14, not a multiple of 4.
            var header = #"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
            while (8 + header.utf8.count) % 4 != 2 { header += " " }
            var data: [UInt8] = []
            for v: Float in [1.5, -2.25] { withUnsafeBytes(of: v.bitPattern.littleEndian) { data += $0 } }
            let path = dir + "/u.safetensors"
            try Self.writeRaw(header: header, data: data, to: path)
            let t = try SafeTensorsFile(path: path).tensor("x")
            #expect(!t.isBorrowed)
            #expect(t.toArray() == [1.5, -2.25])
        }
    }

    // MARK: - Conversion against torch

    @Test(arguments: [("f16", DType.f16), ("bf16", .bf16)])
    func conversionMatchesTorchBitForBit(file: String, dtype: DType) throws {
        let source = try F.bits(nil, "source_f32_bits").map { Float(bitPattern: $0) }
        let torchBits = try F.bits(file, "stored_bits").map { UInt16($0) }
        let ours = source.map { dtype == .bf16 ? HalfConversion.floatToBF16($0) : HalfConversion.floatToF16($0) }
        for i in source.indices where ours[i] != torchBits[i] {
            Issue.record("\(file): \(source[i]) (0x\(String(source[i].bitPattern, radix: 16))) → 0x\(String(ours[i], radix: 16)), torch 0x\(String(torchBits[i], radix: 16))")
        }
        // The same through the writer, read back from the file's bytes.
        try F.withTemporaryDirectory { dir in
            let path = dir + "/w.safetensors"
            try SafeTensorsWriter.write([("values", Tensor(shape: [source.count], values: source))], to: path, dtype: dtype)
            let raw = try Self.dataSection(path)
            let written = (0..<source.count).map { UInt16(raw[2 * $0]) | UInt16(raw[2 * $0 + 1]) << 8 }
            #expect(written == torchBits)
            #expect(try SafeTensorsFile(path: path).tensor("values").toArray().map(\.bitPattern) == (try F.bits(file, "read_back_f32_bits")))
        }
    }

    // MARK: - Writing

    @Test(arguments: DType.allCases)
    func writeReadRoundTrip(dtype: DType) throws {
        try F.withTemporaryDirectory { dir in
            let a = Tensor(shape: [3, 5]), b = Tensor(shape: [7]), empty = Tensor(shape: [0, 4]), scalar = Tensor(shape: [])
            for i in 0..<a.count { a[i] = Float(i) * 0.37 - 2 }
            for i in 0..<b.count { b[i] = Float(1 << (2 * i)) / 3 }
            scalar[0] = -0.5
            let path = dir + "/model.safetensors"
            try SafeTensorsWriter.write([("b.weight", b), ("a.weight", a), ("empty", empty), ("scalar", scalar)], to: path, dtype: dtype)
            let st = try SafeTensorsFile(path: path)
            #expect(st.names == ["a.weight", "b.weight", "empty", "scalar"])
            for (name, t) in [("a.weight", a), ("b.weight", b), ("empty", empty), ("scalar", scalar)] {
                #expect(st.dtype(name) == dtype)
                #expect(st.shape(name) == t.shape)
                let back = try st.tensor(name)
                let want = t.toArray().map { v -> Float in
                    switch dtype {
                    case .f32: return v
                    case .f16: return HalfConversion.f16ToFloat(HalfConversion.floatToF16(v))
                    case .bf16: return HalfConversion.bf16ToFloat(HalfConversion.floatToBF16(v))
                    }
                }
                #expect(back.toArray() == want, "\(name)")
            }
            if let export = F.exportDirectory {
                try FileManager.default.createDirectory(atPath: export, withIntermediateDirectories: true)
                try SafeTensorsWriter.write([("b.weight", b), ("a.weight", a), ("empty", empty), ("scalar", scalar)],
                                            to: export + "/cairn-\(dtype.rawValue.lowercased()).safetensors", dtype: dtype)
            }
        }
    }

    @Test func headerIsPaddedToEightWithPTMetadata() throws {
        try F.withTemporaryDirectory { dir in
            let path = dir + "/m.safetensors"
            // Names of several lengths so that the unpadded JSON is not a multiple of 8 by luck.
            for extra in 0..<8 {
                let name = "w" + String(repeating: "x", count: extra)
                try SafeTensorsWriter.write([(name, Tensor(shape: [2, 3])), ("bias", Tensor(shape: [3]))], to: path)
                let bytes = try #require(FileManager.default.contents(atPath: path))
                let n = Int(bytes.prefix(8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) })
                #expect(n % 8 == 0)
                let header = bytes.subdata(in: 8..<8 + n)
                let object = try #require(try JSONSerialization.jsonObject(with: header) as? [String: Any])
                #expect(object["__metadata__"] as? [String: String] == ["format": "pt"])
                let bias = try #require(object["bias"] as? [String: Any])
                #expect(bias["data_offsets"] as? [Int] == [0, 12])  // sorted by name, contiguous
                let w = try #require(object[name] as? [String: Any])
                #expect(w["data_offsets"] as? [Int] == [12, 36])
                #expect(bytes.count == 8 + n + 36)
            }
            // No temp file is left beside the destination.
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["m.safetensors"])
        }
    }

    @Test func writerKeepsCustomMetadataAndEscapesNames() throws {
        try F.withTemporaryDirectory { dir in
            let path = dir + "/m.safetensors"
            let odd = "weird \"name\"\\with\ttab/é"
            try SafeTensorsWriter.write([(odd, Tensor(shape: [1], values: [3]))], to: path, metadata: ["format": "pt", "cairn": "run 7"])
            let st = try SafeTensorsFile(path: path)
            #expect(st.metadata == ["format": "pt", "cairn": "run 7"])
            #expect(st.names == [odd])
            #expect(try st.tensor(odd).toArray() == [3])
        }
    }

    @Test func writerRefusesDuplicateNames() throws {
        try F.withTemporaryDirectory { dir in
            let e = #expect(throws: FormatError.self) {
                try SafeTensorsWriter.write([("w", Tensor(shape: [1])), ("w", Tensor(shape: [2]))], to: dir + "/d.safetensors")
            }
            #expect(e?.name == "w")
            let left = try FileManager.default.contentsOfDirectory(atPath: dir)
            #expect(left.isEmpty)
        }
    }

    // MARK: - Sharded archives

    @Test func readsAShardedModelDirectory() throws {
        let expected = try F.json("sharded/expected.json")
        for path in [F.path("sharded"), F.path("sharded/model.safetensors.index.json")] {
            let archive = try SafeTensorsArchive(path: path)
            #expect(archive.names == expected.keys.sorted())
            for name in archive.names {
                let e = try #require(expected[name] as? [String: Any])
                let shape = try #require(e["shape"] as? [Int])
                #expect(archive.shape(name) == shape)
                #expect(archive.dtype(name) == (e["dtype"] as? String == "bfloat16" ? .bf16 : .f32))
                let t = try archive.tensor(name, expectedShape: shape)
                let numbers = try #require(e["first_f32_bits"] as? [NSNumber])
                let first = numbers.map(\.uint32Value)
                #expect(t.toArray().prefix(first.count).map(\.bitPattern) == first, "\(name)")
                #expect(t.isBorrowed == (archive.dtype(name) == .f32))
            }
        }
    }

    @Test func archiveReportsShapeMismatchAndMissingTensors() throws {
        let archive = try SafeTensorsArchive(path: F.path("sharded"))
        let name = "model.layers.0.mlp.up_proj.weight"
        let e = #expect(throws: FormatError.self) { try archive.tensor(name, expectedShape: [8, 12]) }
        #expect(e?.name == name)
        #expect(e?.description.contains("has shape [12, 8] but the model config expects [8, 12]") == true)
        #expect(e?.file.hasSuffix("model-00001-of-00002.safetensors") == true)
        let missing = #expect(throws: FormatError.self) { try archive.tensor("lm_head.weight") }
        #expect(missing?.name == "lm_head.weight")
    }

    @Test func archiveOpensASingleFileAndADirectoryWithModelSafetensors() throws {
        #expect(try SafeTensorsArchive(path: F.path("bf16.safetensors")).names == ["matrix", "values"])
        try F.withTemporaryDirectory { dir in
            try SafeTensorsWriter.write([("w", Tensor(shape: [2], values: [1, 2]))], to: dir + "/model.safetensors")
            #expect(try SafeTensorsArchive(path: dir).tensor("w", expectedShape: [2]).toArray() == [1, 2])
            try FileManager.default.removeItem(atPath: dir + "/model.safetensors")
            let e = #expect(throws: FormatError.self) { try SafeTensorsArchive(path: dir) }
            #expect(e?.description.contains("neither model.safetensors nor model.safetensors.index.json") == true)
        }
    }

    @Test func indexErrorsNameTheTensorAndShard() throws {
        try F.withTemporaryDirectory { dir in
            try SafeTensorsWriter.write([("a", Tensor(shape: [1]))], to: dir + "/s1.safetensors")
            let index = dir + "/model.safetensors.index.json"
            try #"{"metadata": {}, "weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}}"#.write(toFile: index, atomically: true, encoding: .utf8)
            var e = #expect(throws: FormatError.self) { try SafeTensorsArchive(path: dir) }
            #expect(e?.name == "b")
            #expect(e?.description.contains("s2.safetensors") == true)
            try #"{"weight_map": {"a": "s1.safetensors", "c": "s1.safetensors"}}"#.write(toFile: index, atomically: true, encoding: .utf8)
            e = #expect(throws: FormatError.self) { try SafeTensorsArchive(path: dir) }
            #expect(e?.name == "c")
            #expect(e?.description.contains("does not hold it") == true)
            try #"{"weight_map": ["#.write(toFile: index, atomically: true, encoding: .utf8)
            e = #expect(throws: FormatError.self) { try SafeTensorsArchive(path: dir) }
            #expect(e?.file == index)
        }
    }

    // MARK: - Malformed files: a FormatError naming the tensor, never a crash

    struct Malformed: CustomTestStringConvertible, Sendable {
        let label: String
        let header: String?      // nil: `raw` is the whole file
        let lengthOverride: UInt64?
        let dataBytes: Int
        let raw: [UInt8]
        let tensor: String?      // the tensor the error must name
        let phrase: String       // and a phrase it must contain
        var testDescription: String { label }

        init(_ label: String, header: String?, length: UInt64? = nil, data: Int = 0, raw: [UInt8] = [], tensor: String?, phrase: String) {
            self.label = label; self.header = header; lengthOverride = length; dataBytes = data; self.raw = raw
            self.tensor = tensor; self.phrase = phrase
        }
    }

    static let malformed: [Malformed] = [
        Malformed("truncated data", header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}"#,
                  data: 20, tensor: "b", phrase: "ends at byte 24 but the data section has 20 bytes (truncated file?)"),
        Malformed("header length past the end", header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, length: 1000, data: 4,
                  tensor: nil, phrase: "header length 1000 is past the end of the file"),
        Malformed("huge header length", header: "{}", length: UInt64.max, tensor: nil, phrase: "header length 18446744073709551615 is past the end"),
        Malformed("overlapping offsets", header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                  data: 8, tensor: "b", phrase: "overlaps tensor 'a'"),
        Malformed("gap between tensors", header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#,
                  data: 12, tensor: "b", phrase: "a gap of 4 bytes"),
        Malformed("bytes after the last tensor", header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: 8,
                  tensor: nil, phrase: "4 bytes belong to no tensor"),
        Malformed("dtype safetensors does not know", header: #"{"w":{"dtype":"F9","shape":[1],"data_offsets":[0,1]}}"#, data: 1,
                  tensor: "w", phrase: "unknown dtype \"F9\""),
        Malformed("shape times dtype size is not the byte length", header: #"{"model.norm.weight":{"dtype":"BF16","shape":[3,4],"data_offsets":[0,12]}}"#,
                  data: 12, tensor: "model.norm.weight", phrase: "has shape [3, 4] of BF16 (24.0 bytes) but data_offsets [0, 12] hold 12 bytes"),
        Malformed("offsets reversed", header: #"{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}"#, data: 4,
                  tensor: "a", phrase: "begin must be ≥ 0 and ≤ end"),
        Malformed("negative dimension", header: #"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: 4,
                  tensor: "a", phrase: "negative dimension"),
        Malformed("missing data_offsets", header: #"{"a":{"dtype":"F32","shape":[1]}}"#, data: 4,
                  tensor: "a", phrase: "missing \"data_offsets\""),
        Malformed("shape of strings", header: #"{"a":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}}"#, data: 4,
                  tensor: "a", phrase: "malformed header entry"),
        Malformed("overflowing shape", header: #"{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,4]}}"#, data: 4,
                  tensor: "a", phrase: "more than"),
        Malformed("invalid JSON header", header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]"#, data: 4,
                  tensor: nil, phrase: "the header is not a JSON object"),
        Malformed("header is a JSON array", header: "[1, 2]  ", tensor: nil, phrase: "the header is not a JSON object"),
        Malformed("metadata not strings", header: #"{"__metadata__":{"format":1}}"#, tensor: "__metadata__", phrase: "key '__metadata__' is not an object of strings"),
        Malformed("shorter than the length field", header: nil, raw: [1, 0, 0], tensor: nil, phrase: "the file has 3 bytes"),
        Malformed("empty file", header: nil, raw: [], tensor: nil, phrase: "the file has 0 bytes"),
    ]

    @Test(arguments: malformed)
    func malformedFileGivesAnErrorNamingTheTensor(_ m: Malformed) throws {
        try F.withTemporaryDirectory { dir in
            let path = dir + "/bad.safetensors"
            if let header = m.header {
                try Self.writeRaw(header: header, data: [UInt8](repeating: 0, count: m.dataBytes), to: path, length: m.lengthOverride)
            } else {
                try Data(m.raw).write(to: URL(fileURLWithPath: path))
            }
            let e = #expect(throws: FormatError.self) { _ = try SafeTensorsFile(path: path) }
            #expect(e?.name == m.tensor)
            #expect(e?.file == path)
            #expect(e?.description.contains(m.phrase) == true, "\(e?.description ?? "no error")")
            #expect(e?.description.hasPrefix("\(path): ") == true)
            if let t = m.tensor { #expect(e?.description.contains("'\(t)'") == true) }
        }
    }

    @Test func dtypeCairnDoesNotConvertIsNamedWhenRead() throws {
        try F.withTemporaryDirectory { dir in
            let path = dir + "/f8.safetensors"
            try Self.writeRaw(header: #"{"w8":{"dtype":"F8_E4M3","shape":[2,2],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                              data: [UInt8](repeating: 0, count: 8), to: path)
            let st = try SafeTensorsFile(path: path)  // the layout is valid
            #expect(st.names == ["w", "w8"])
            #expect(st.dtype("w8") == nil)
            #expect(st.shape("w8") == [2, 2])
            let e = #expect(throws: FormatError.self) { _ = try st.tensor("w8") }
            #expect(e?.description == "\(path): tensor 'w8' has dtype F8_E4M3; Cairn reads F32, F16 and BF16 only")
            #expect(try st.tensor("w").toArray() == [0])
        }
    }

    @Test func missingFileAndMissingTensorAreNamed() throws {
        let e = #expect(throws: FormatError.self) { _ = try SafeTensorsFile(path: "/nonexistent/model.safetensors") }
        #expect(e?.description == "/nonexistent/model.safetensors: no such file")
        let st = try SafeTensorsFile(path: F.path("f32.safetensors"))
        let m = #expect(throws: FormatError.self) { _ = try st.tensor("nope") }
        #expect(m?.name == "nope")
    }

    // MARK: - Helpers

    /// 8-byte little-endian length (the header's, unless overridden), header, data.
    static func writeRaw(header: String, data: [UInt8], to path: String, length: UInt64? = nil) throws {
        var bytes: [UInt8] = []
        withUnsafeBytes(of: (length ?? UInt64(header.utf8.count)).littleEndian) { bytes += $0 }
        bytes += Array(header.utf8)
        bytes += data
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// The bytes after the header.
    static func dataSection(_ path: String) throws -> [UInt8] {
        let bytes = try #require(FileManager.default.contents(atPath: path))
        let n = Int(bytes.prefix(8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) })
        return [UInt8](bytes[(8 + n)...])
    }
}
