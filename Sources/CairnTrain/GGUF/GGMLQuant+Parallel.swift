import Foundation

extension GGMLQuant {
    /// `dequantize` split over the cores in runs of whole blocks (`BLAS.workers`); small tensors on
    /// the calling thread.
    static func dequantizeParallel(_ type: GGMLType, _ source: UnsafeRawPointer, count: Int,
                                   into out: UnsafeMutablePointer<Float>) throws {
        let blocks = count / type.blockSize
        let parts = min(ProcessInfo.processInfo.activeProcessorCount, max(1, count >> 18), max(blocks, 1))
        if parts <= 1 || blocks * type.blockSize != count {
            try dequantize(type, source, count: count, into: out)
            return
        }
        let per = (blocks + parts - 1) / parts
        try BLAS.workers(parts) { p in
            let first = p * per, last = min(blocks, first + per)
            guard first < last else { return }
            try dequantize(type, source + first * type.typeSize, count: (last - first) * type.blockSize,
                           into: out + first * type.blockSize)
        }
    }
}
