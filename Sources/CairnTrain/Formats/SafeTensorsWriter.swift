import CairnSystem
/// Writes safetensors files that `safetensors.torch.load_file` reads: tensors sorted by name with
/// contiguous offsets, the header JSON padded with spaces to a multiple of 8 bytes (so the data
/// section starts 8-aligned), and `__metadata__`.
public enum SafeTensorsWriter {
    /// Elements converted per chunk when writing F16/BF16 (bounded memory for any tensor size).
    static let chunkElements = 1 << 16

    /// Writes `tensors` to a temp file beside `path`, fsyncs it and renames it over `path`.
    /// dtype: F32 as is; F16 and BF16 rounded to nearest even (BF16 exactly like torch's
    /// `.to(torch.bfloat16)`). Names must be unique and non-empty.
    public static func write(_ tensors: [(name: String, tensor: Tensor)], to path: String, dtype: DType = .f32,
                             metadata: [String: String] = ["format": "pt"]) throws {
        let sorted = tensors.sorted { $0.name < $1.name }
        for (i, t) in sorted.enumerated() {
            if t.name.isEmpty || t.name == "__metadata__" {
                throw FormatError(file: path, tensor: t.name, "is not a valid tensor name")
            }
            if i > 0, sorted[i - 1].name == t.name {
                throw FormatError(file: path, tensor: t.name, "is given twice")
            }
        }
        let header = headerBytes(sorted, dtype: dtype, metadata: metadata)

        let out: AtomicFile
        do { out = try AtomicFile(path: path) } catch { throw FormatError(file: path, "cannot be written: \(error)") }
        do {
            var length = UInt64(header.count).littleEndian
            try withUnsafeBytes(of: &length) { try out.write($0) }
            try out.write(header)
            let chunk = UnsafeMutableRawPointer.allocate(byteCount: chunkElements * 4, alignment: 8)
            defer { chunk.deallocate() }
            for (_, t) in sorted {
                if dtype == .f32, UInt32(1).littleEndian == 1 {  // the bytes as they are in memory
                    try out.write(UnsafeRawBufferPointer(start: t.data, count: t.count * 4))
                    continue
                }
                var done = 0
                while done < t.count {
                    let n = min(chunkElements, t.count - done)
                    HalfConversion.encode(dtype, from: t.data + done, count: n, into: chunk)
                    try out.write(UnsafeRawBufferPointer(start: chunk, count: n * dtype.size))
                    done += n
                }
            }
            try out.commit()
        } catch let e as FormatError {
            throw e
        } catch {
            throw FormatError(file: path, "cannot be written: \(error)")
        }
    }

    /// `{"__metadata__":{…},"name":{"dtype":"F32","shape":[…],"data_offsets":[b,e]},…}` padded with
    /// spaces to a multiple of 8 bytes.
    static func headerBytes(_ sorted: [(name: String, tensor: Tensor)], dtype: DType, metadata: [String: String]) -> [UInt8] {
        var json = "{"
        var first = true
        if !metadata.isEmpty {
            json += "\"__metadata__\":{"
            json += metadata.sorted { $0.key < $1.key }.map { "\(jsonString($0.key)):\(jsonString($0.value))" }.joined(separator: ",")
            json += "}"
            first = false
        }
        var offset = 0
        for (name, t) in sorted {
            let end = offset + t.count * dtype.size
            json += first ? "" : ","
            json += "\(jsonString(name)):{\"dtype\":\"\(dtype.rawValue)\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(end)]}"
            first = false
            offset = end
        }
        json += "}"
        var bytes = Array(json.utf8)
        while bytes.count % 8 != 0 { bytes.append(0x20) }
        return bytes
    }

    /// A JSON string literal (RFC 8259 escaping).
    static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20:
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}
