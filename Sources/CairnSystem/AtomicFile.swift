import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A file written as git writes objects: into a temp file beside the destination (created with
/// O_EXCL, never through a symlink), fsync'd, renamed over the destination (a symlink there is
/// replaced, never followed), then the directory fsync'd. Until `commit()` the destination is
/// untouched; an uncommitted writer removes its temp file in `deinit`. Every file Cairn produces
/// is written this way.
public final class AtomicFile {
    public let path: String
    private let tempPath: String
    private var file: FileDescriptor?
    private var committed = false

    public init(path: String, mode: mode_t = 0o644) throws {
        self.path = path
        let dir = FileSystem.directory(of: path)
        let name = path.split(separator: "/").last.map(String.init) ?? path
        var attempt = 0
        while true {
            let temp = "\(dir)/.\(name).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            do {
                file = try FileDescriptor.createExclusive(temp, mode: mode)
                tempPath = temp
                return
            } catch let e as SystemError where e.exists && attempt < 15 {
                attempt += 1
            }
        }
    }

    deinit {
        file = nil
        if !committed { unlink(tempPath) }
    }

    public func write(_ buffer: UnsafeRawBufferPointer) throws {
        try file!.writeAll(buffer)
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    public func write(_ data: Data) throws {
        try data.withUnsafeBytes { try write($0) }
    }

    /// fsync, close, rename over `path`, fsync the directory.
    public func commit() throws {
        let f = file!
        try f.sync()
        file = nil  // closed here: the last reference
        try FileSystem.rename(tempPath, path)
        committed = true
        try FileSystem.syncDirectory(FileSystem.directory(of: path))
    }

    /// Writes a whole file durably and atomically.
    public static func write(_ bytes: [UInt8], to path: String) throws {
        let w = try AtomicFile(path: path)
        try w.write(bytes)
        try w.commit()
    }

    public static func write(_ data: Data, to path: String) throws {
        let w = try AtomicFile(path: path)
        try w.write(data)
        try w.commit()
    }

    /// Writes `text` as UTF-8.
    public static func write(_ text: String, to path: String) throws {
        try write(Data(text.utf8), to: path)
    }
}

/// Foundation's `localizedDescription` of a SystemError is its description.
extension SystemError: LocalizedError {
    public var errorDescription: String? { description }
}
