// The only file of CairnTrain that maps memory: mmap/munmap for reading model files in place.
// Opening them, and writing files as git does (AtomicFile), is CairnSystem's.
import CairnSystem
import Glibc

/// A whole file mapped private and writable: pages are shared with the page cache until written,
/// then copied (copy-on-write), so the file on disk never changes. Unmapped in `deinit`.
final class MappedFile {
    let path: String
    /// The first byte of the mapping; nil for an empty file (mmap refuses length 0).
    let base: UnsafeMutableRawPointer?
    let size: Int

    init(path: String) throws {
        self.path = path
        let file = try FileDescriptor.openForReading(path)
        let info = try file.info()
        guard info.kind == .file else { throw SystemError(function: "open", errno: EISDIR, path: path) }
        size = Int(info.size)
        if size == 0 {
            base = nil
            return
        }
        let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, file.fd, 0)
        guard let p, p != MAP_FAILED else { throw SystemError.last("mmap", path) }
        base = p
    }

    deinit {
        if let base { munmap(base, size) }
    }

    /// Maps a model file (safetensors, GGUF); failures as the `FormatError` the formats throw.
    convenience init(modelFile path: String) throws {
        do {
            try self.init(path: path)
        } catch let e as SystemError {
            throw FormatError(file: path, e.isNotFound ? "no such file" : "cannot open: \(e)")
        }
    }

    /// The mapped bytes, read-only.
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: size) }
}
