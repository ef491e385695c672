/// GPT-2's reversible map between bytes and printable unicode scalars, used by byte-level BPE.
///
/// Bytes that are printable Latin-1 (`!`…`~`, `¡`…`¬`, `®`…`ÿ`) map to themselves; the other 68
/// bytes map, in byte order, to U+0100, U+0101, … so that every vocabulary token is printable text
/// (a space becomes `Ġ`, a newline `Ċ`). This is `bytes_to_unicode()` from GPT-2's `encoder.py`.
enum ByteLevel {
    /// `scalarOfByte[b]` is the scalar that stands for byte `b` in vocabulary tokens.
    static let scalarOfByte: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            let printable = (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
            if printable {
                table[b] = Unicode.Scalar(UInt8(b))
            } else {
                table[b] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// The inverse of `scalarOfByte`, indexed by scalar value (all of them are below U+0144).
    private static let byteOfScalarTable: [Int16] = {
        var table = [Int16](repeating: -1, count: 0x144)
        for (b, s) in scalarOfByte.enumerated() { table[Int(s.value)] = Int16(b) }
        return table
    }()

    /// The byte a scalar stands for, or nil when the scalar is not in the byte-level alphabet.
    static func byte(of scalar: Unicode.Scalar) -> UInt8? {
        let v = Int(scalar.value)
        guard v < byteOfScalarTable.count, byteOfScalarTable[v] >= 0 else { return nil }
        return UInt8(byteOfScalarTable[v])
    }

    /// The vocabulary spelling of raw bytes (`" hi"` → `"Ġhi"`).
    static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var scalars = String.UnicodeScalarView()
        for b in bytes { scalars.append(scalarOfByte[Int(b)]) }
        return String(scalars)
    }

    /// The raw bytes a vocabulary token stands for, or nil when one of its scalars is outside the
    /// byte-level alphabet (an added token such as `"<|im start|>"` with a real space in it).
    static func decode(_ token: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(token.utf8.count)
        for s in token.unicodeScalars {
            guard let b = byte(of: s) else { return nil }
            bytes.append(b)
        }
        return bytes
    }

    /// The bytes HF's ByteLevel decoder produces for one token: the mapped bytes when every scalar is
    /// in the alphabet, otherwise the token's own UTF-8.
    static func decoderBytes(of token: String) -> [UInt8] {
        decode(token) ?? Array(token.utf8)
    }
}
