/// One metadata value of a GGUF file, with the type it is written as (gguf-py's `GGUFValueType`).
/// Arrays keep their element type so that an empty array is written back as it was read.
public enum GGUFValue: Equatable, Sendable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case float32(Float), bool(Bool), string(String)
    case array(GGUFValueType, [GGUFValue])
    case uint64(UInt64), int64(Int64), float64(Double)

    /// The type tag written before the value.
    public var type: GGUFValueType {
        switch self {
        case .uint8: return .uint8
        case .int8: return .int8
        case .uint16: return .uint16
        case .int16: return .int16
        case .uint32: return .uint32
        case .int32: return .int32
        case .float32: return .float32
        case .bool: return .bool
        case .string: return .string
        case .array: return .array
        case .uint64: return .uint64
        case .int64: return .int64
        case .float64: return .float64
        }
    }

    /// Any integer value as an Int (nil for other types or a UInt64 past Int.max).
    public var int: Int? {
        switch self {
        case .uint8(let v): return Int(v)
        case .int8(let v): return Int(v)
        case .uint16(let v): return Int(v)
        case .int16(let v): return Int(v)
        case .uint32(let v): return Int(v)
        case .int32(let v): return Int(v)
        case .uint64(let v): return v <= UInt64(Int.max) ? Int(v) : nil
        case .int64(let v): return Int(v)
        default: return nil
        }
    }

    /// Any number (integer or float) as a Double.
    public var double: Double? {
        switch self {
        case .float32(let v): return Double(v)
        case .float64(let v): return v
        default: return int.map(Double.init)
        }
    }

    public var string: String? { if case .string(let s) = self { return s } else { return nil } }
    public var bool: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    /// The elements of an array (nil for a scalar).
    public var array: [GGUFValue]? { if case .array(_, let a) = self { return a } else { return nil } }
    /// An array of strings (nil when not an array or an element is not a string).
    public var strings: [String]? { elements(\.string) }
    /// An array of integers (nil when not an array or an element is not an integer).
    public var ints: [Int]? { elements(\.int) }
    /// An array of numbers (nil when not an array or an element is not a number).
    public var doubles: [Double]? { elements(\.double) }

    /// Every element of an array converted by `convert`; nil when any conversion fails.
    private func elements<T>(_ convert: (GGUFValue) -> T?) -> [T]? {
        guard let a = array else { return nil }
        var out: [T] = []
        out.reserveCapacity(a.count)
        for v in a { guard let x = convert(v) else { return nil }; out.append(x) }
        return out
    }

    /// A short description for error messages: the type and, for scalars, the value.
    var summary: String {
        switch self {
        case .string(let s): return "string \"\(s.count > 40 ? String(s.prefix(40)) + "…" : s)\""
        case .array(let t, let a): return "array of \(a.count) \(t)"
        case .bool(let b): return "bool \(b)"
        default: return "\(type) \(double.map { "\($0)" } ?? "?")"
        }
    }
}

/// The value types of GGUF metadata, with the numbers the format gives them.
public enum GGUFValueType: UInt32, Sendable, CustomStringConvertible {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, bool = 7
    case string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

    /// Bytes of a scalar of this type (nil for string and array, which have a length prefix).
    var fixedSize: Int? {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .uint16, .int16: return 2
        case .uint32, .int32, .float32: return 4
        case .uint64, .int64, .float64: return 8
        case .string, .array: return nil
        }
    }

    public var description: String {
        switch self {
        case .uint8: return "uint8"
        case .int8: return "int8"
        case .uint16: return "uint16"
        case .int16: return "int16"
        case .uint32: return "uint32"
        case .int32: return "int32"
        case .float32: return "float32"
        case .bool: return "bool"
        case .string: return "string"
        case .array: return "array"
        case .uint64: return "uint64"
        case .int64: return "int64"
        case .float64: return "float64"
        }
    }
}

/// A GGUF file's metadata in file order, with lookups that throw `FormatError`s naming the file and
/// the key: `model.gguf: key 'llama.block_count' is missing`.
public struct GGUFMetadata: Sendable {
    /// The file the metadata came from (for error messages).
    public let file: String
    /// Every key and value in the order they were read (or will be written).
    public private(set) var entries: [(key: String, value: GGUFValue)]
    private var index: [String: Int]

    public init(file: String, entries: [(key: String, value: GGUFValue)] = []) {
        self.file = file
        self.entries = []
        index = [:]
        for (k, v) in entries { self[k] = v }
    }

    public var keys: [String] { entries.map(\.key) }

    /// The value of `key`, or nil. Setting replaces in place or appends; setting nil removes.
    public subscript(key: String) -> GGUFValue? {
        get { index[key].map { entries[$0].value } }
        set {
            if let i = index[key] {
                if let newValue { entries[i].value = newValue } else {
                    entries.remove(at: i)
                    index = Dictionary(uniqueKeysWithValues: entries.enumerated().map { ($1.key, $0) })
                }
            } else if let newValue {
                index[key] = entries.count
                entries.append((key, newValue))
            }
        }
    }

    public func contains(_ key: String) -> Bool { index[key] != nil }

    func missing(_ key: String) -> FormatError { FormatError(file: file, key: key, "is missing") }
    func wrongType(_ key: String, _ v: GGUFValue, _ expected: String) -> FormatError {
        FormatError(file: file, key: key, "is a \(v.summary), expected \(expected)")
    }

    /// A required string.
    public func string(_ key: String) throws -> String {
        guard let v = self[key] else { throw missing(key) }
        guard let s = v.string else { throw wrongType(key, v, "a string") }
        return s
    }

    /// An optional string (a present value of another type is an error).
    public func optionalString(_ key: String) throws -> String? {
        guard let v = self[key] else { return nil }
        guard let s = v.string else { throw wrongType(key, v, "a string") }
        return s
    }

    /// A required integer of any integer type.
    public func int(_ key: String) throws -> Int {
        guard let v = self[key] else { throw missing(key) }
        guard let i = v.int else { throw wrongType(key, v, "an integer") }
        return i
    }

    public func optionalInt(_ key: String) throws -> Int? {
        guard let v = self[key] else { return nil }
        guard let i = v.int else { throw wrongType(key, v, "an integer") }
        return i
    }

    /// An optional number of any numeric type.
    public func optionalDouble(_ key: String) throws -> Double? {
        guard let v = self[key] else { return nil }
        guard let d = v.double else { throw wrongType(key, v, "a number") }
        return d
    }

    public func optionalBool(_ key: String) throws -> Bool? {
        guard let v = self[key] else { return nil }
        guard let b = v.bool else { throw wrongType(key, v, "a bool") }
        return b
    }

    /// A required array of strings.
    public func strings(_ key: String) throws -> [String] {
        guard let v = self[key] else { throw missing(key) }
        guard let s = v.strings else { throw wrongType(key, v, "an array of strings") }
        return s
    }

    /// An optional array of integers.
    public func optionalInts(_ key: String) throws -> [Int]? {
        guard let v = self[key] else { return nil }
        guard let i = v.ints else { throw wrongType(key, v, "an array of integers") }
        return i
    }

    /// An optional array of numbers.
    public func optionalDoubles(_ key: String) throws -> [Double]? {
        guard let v = self[key] else { return nil }
        guard let d = v.doubles else { throw wrongType(key, v, "an array of numbers") }
        return d
    }
}
