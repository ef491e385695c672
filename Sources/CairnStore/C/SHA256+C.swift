// The only file of CairnStore that talks to libcrypto.
import CCrypto

/// Incremental SHA-256 through OpenSSL's EVP interface (SHA-NI where the CPU has it). Every
/// libcrypto call is checked; one that fails (only out of memory or a broken libcrypto can make
/// SHA-256 fail) stops the process naming the call and OpenSSL's reason, since a digest that was
/// not computed must never name a blob.
final class SHA256Hasher {
    private let ctx: OpaquePointer

    init() {
        guard let c = EVP_MD_CTX_new() else { cryptoFailure("EVP_MD_CTX_new") }
        ctx = c
        check(EVP_DigestInit_ex(ctx, EVP_sha256(), nil), "EVP_DigestInit_ex")
    }

    deinit { EVP_MD_CTX_free(ctx) }

    func update(_ buffer: UnsafeRawBufferPointer) {
        guard buffer.count > 0 else { return }
        check(EVP_DigestUpdate(ctx, buffer.baseAddress, buffer.count), "EVP_DigestUpdate")
    }

    func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    /// The digest as 64 lowercase hex characters; the hasher is spent afterwards.
    func finalizeHex() -> String {
        var out = [UInt8](repeating: 0, count: 32)
        var len: UInt32 = 0
        check(EVP_DigestFinal_ex(ctx, &out, &len), "EVP_DigestFinal_ex")
        guard len == 32 else { cryptoFailure("EVP_DigestFinal_ex") }
        return hexString(out)
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let h = SHA256Hasher()
        h.update(bytes)
        return h.finalizeHex()
    }
}

/// EVP calls return 1 on success.
private func check(_ rc: Int32, _ function: String) {
    if rc != 1 { cryptoFailure(function) }
}

private func cryptoFailure(_ function: String) -> Never {
    var buf = [CChar](repeating: 0, count: 256)
    ERR_error_string_n(ERR_get_error(), &buf, buf.count)
    fatalError("\(function) failed: \(String(cString: buf))")
}

func hexString(_ bytes: [UInt8]) -> String {
    let digits: [UInt8] = Array("0123456789abcdef".utf8)
    var out = [UInt8](); out.reserveCapacity(bytes.count * 2)
    for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
    return String(decoding: out, as: UTF8.self)
}
