import CairnStore
import Foundation

/// The part of JSON Schema that checks a reply's shape: type (one or a list), properties,
/// required, additionalProperties (false), items, enum, minimum/maximum, minLength/maxLength,
/// minItems/maxItems. Any other keyword is an error when loading, never silently ignored.
public struct JSONSchema {
    let root: JSONValue
    static let keys: Set<String> = ["$schema", "$id", "title", "description", "type", "properties", "required", "additionalProperties",
                                    "items", "enum", "minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems"]

    public init(file: String) throws {
        guard let d = FileManager.default.contents(atPath: file), let v = JSONValue.parse(String(decoding: d, as: UTF8.self)),
              case .object = v else {
            throw ConfigError(file: file, line: nil, "not a JSON object (a JSON schema)")
        }
        try Self.check(v, file: file, at: "#")
        root = v
    }

    static func check(_ s: JSONValue, file: String, at path: String) throws {
        guard case .object(let o) = s else { throw ConfigError(file: file, line: nil, "schema at \(path) must be an object") }
        for k in o.keys where !keys.contains(k) {
            throw ConfigError(file: file, line: nil, "schema keyword '\(k)' at \(path) is not supported (supported: \(keys.sorted().joined(separator: ", ")))")
        }
        if case .object(let props)? = o["properties"] { for (k, v) in props { try check(v, file: file, at: "\(path)/properties/\(k)") } }
        if let items = o["items"] { try check(items, file: file, at: path + "/items") }
    }

    /// Problems of `value` against the schema; empty when it matches.
    public func validate(_ value: JSONValue) -> [String] { Self.validate(value, root, at: "$") }

    /// Parses `text` as JSON and validates it; nil when it is not JSON at all.
    public func validate(text: String) -> [String]? { JSONValue.parse(text).map(validate) }

    static func typeName(_ v: JSONValue) -> String {
        switch v {
        case .null: return "null"
        case .bool: return "boolean"
        case .number(let d): return d == d.rounded() ? "integer" : "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }

    static func int(_ v: JSONValue?) -> Int? { v?.numberValue.map { Int($0) } }

    static func validate(_ v: JSONValue, _ schema: JSONValue, at path: String) -> [String] {
        guard case .object(let s) = schema else { return [] }
        var errs: [String] = []
        let t = typeName(v)
        if let want = s["type"] {
            let types: [String]
            if case .array(let a) = want { types = a.compactMap(\.stringValue) } else { types = [want.stringValue ?? ""] }
            if !(types.contains(t) || (t == "integer" && types.contains("number"))) { return ["\(path): expected \(types.joined(separator: " or ")), got \(t)"] }
        }
        if case .array(let e)? = s["enum"], !e.contains(v) { errs.append("\(path): not one of the allowed values") }
        if case .number(let n) = v {
            if let mn = s["minimum"]?.numberValue, n < mn { errs.append("\(path): below \(mn)") }
            if let mx = s["maximum"]?.numberValue, n > mx { errs.append("\(path): above \(mx)") }
        }
        if case .string(let str) = v {
            if let mn = int(s["minLength"]), str.count < mn { errs.append("\(path): shorter than \(mn)") }
            if let mx = int(s["maxLength"]), str.count > mx { errs.append("\(path): longer than \(mx)") }
        }
        if case .array(let arr) = v {
            if let mn = int(s["minItems"]), arr.count < mn { errs.append("\(path): fewer than \(mn) items") }
            if let mx = int(s["maxItems"]), arr.count > mx { errs.append("\(path): more than \(mx) items") }
            if let items = s["items"] { for (i, x) in arr.enumerated() { errs += validate(x, items, at: "\(path)[\(i)]") } }
        }
        if case .object(let obj) = v {
            if case .array(let req)? = s["required"] {
                for r in req.compactMap(\.stringValue) where obj[r] == nil { errs.append("\(path): missing \"\(r)\"") }
            }
            var props: [String: JSONValue] = [:]
            if case .object(let p)? = s["properties"] { props = p }
            for (k, x) in obj.sorted(by: { $0.key < $1.key }) {
                if let sub = props[k] { errs += validate(x, sub, at: "\(path).\(k)") }
                else if s["additionalProperties"] == .bool(false) { errs.append("\(path): unexpected \"\(k)\"") }
            }
        }
        return errs
    }
}
