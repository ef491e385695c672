import CairnStore
import Foundation

/// Printing helpers: data to stdout, notes and errors to stderr.
enum Output {
    static func out(_ s: String) { FileHandle.standardOutput.write(Data((s.hasSuffix("\n") ? s : s + "\n").utf8)) }
    /// Exactly `s`, no newline added (rendered templates, where every byte matters).
    static func raw(_ s: String) { FileHandle.standardOutput.write(Data(s.utf8)) }
    static func note(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

    static func json<T: Encodable>(_ value: T) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        out(String(decoding: try enc.encode(value), as: UTF8.self))
    }

    /// Columns padded to their widest cell; the last column is not padded.
    static func table(_ header: [String], _ rows: [[String]]) {
        let all = [header] + rows
        let widths = header.indices.map { c in all.map { $0[c].count }.max() ?? 0 }
        for r in all {
            out(r.enumerated().map { c, cell in c == r.count - 1 ? cell : cell.padding(toLength: widths[c], withPad: " ", startingAt: 0) }
                .joined(separator: "  "))
        }
    }

    static func size(_ bytes: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var v = Double(bytes), u = 0
        while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
        return u == 0 ? "\(bytes) B" : String(format: "%.1f %@", v, units[u])
    }

    static func time(_ t: Double) -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyy-MM-dd HH:mm:ss"
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: Date(timeIntervalSince1970: t)) + "Z"
    }

    /// A duration as people say it: 40 s, 12 min, 3 h, 2 d.
    static func age(_ seconds: Double) -> String {
        let s = max(0, seconds)
        if s < 90 { return "\(Int(s)) s" }
        if s < 90 * 60 { return "\(Int(s / 60)) min" }
        if s < 36 * 3600 { return "\(Int(s / 3600)) h" }
        return "\(Int(s / 86400)) d"
    }
}
