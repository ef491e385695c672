// The only file of CairnPipeline that calls libyaml.
import CYAML
import Foundation

extension YAMLNode {
    /// Parses one YAML document (libyaml's event parser) into nodes that keep their line
    /// numbers. Anchors and aliases are refused; an empty document is an empty mapping. A file
    /// over `maxBytes` or nested deeper than `maxDepth` is an error naming the line (and the
    /// key path) where the limit is crossed, before any deep value is built.
    public static func parse(_ text: String, file: String) throws -> YAMLNode {
        let bytes = Array(text.utf8)
        if bytes.count > maxBytes {
            let line = bytes.prefix(maxBytes).reduce(1) { $0 + ($1 == 0x0A ? 1 : 0) }
            throw ConfigError(file: file, line: line, "the file is \(bytes.count) bytes; a YAML config may have at most \(maxBytes) (\(maxBytes >> 20) MiB), and line \(line) passes it")
        }
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { throw ConfigError(file: file, line: nil, "libyaml could not start (out of memory)") }
        defer { yaml_parser_delete(&parser) }
        return try bytes.withUnsafeBufferPointer { buf -> YAMLNode in
            yaml_parser_set_input_string(&parser, buf.baseAddress, buf.count)
            // A stack of containers being built: (node start, items, keys for mappings).
            struct Frame { var line: Int; var column: Int; var isMapping: Bool; var items: [YAMLNode] }
            var stack: [Frame] = []
            var root: YAMLNode?
            func emit(_ node: YAMLNode) {
                if stack.isEmpty { root = node } else { stack[stack.count - 1].items.append(node) }
            }
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else {
                    let problem = parser.problem.map { String(cString: $0) } ?? "syntax error"
                    throw ConfigError(file: file, line: Int(parser.problem_mark.line) + 1, "invalid YAML: \(problem)")
                }
                defer { yaml_event_delete(&event) }
                let line = Int(event.start_mark.line) + 1, column = Int(event.start_mark.column) + 1
                switch event.type {
                case YAML_STREAM_END_EVENT:
                    return root ?? YAMLNode(.mapping([]), line: 1, column: 1)
                case YAML_SCALAR_EVENT:
                    let s = event.data.scalar
                    let value = String(decoding: UnsafeBufferPointer(start: s.value, count: Int(s.length)), as: UTF8.self)
                    emit(YAMLNode(.scalar(value, quoted: s.style == YAML_SINGLE_QUOTED_SCALAR_STYLE || s.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE),
                                  line: line, column: column))
                case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                    guard stack.count < maxDepth else {
                        throw ConfigError(file: file, line: line, "key '\(keyPath(stack.map { ($0.isMapping, $0.items) }))': values nest deeper than \(maxDepth) levels")
                    }
                    stack.append(Frame(line: line, column: column, isMapping: event.type == YAML_MAPPING_START_EVENT, items: []))
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                    let f = stack.removeLast()
                    if f.isMapping {
                        var pairs: [(YAMLNode, YAMLNode)] = []
                        for i in stride(from: 0, to: f.items.count - 1, by: 2) { pairs.append((f.items[i], f.items[i + 1])) }
                        emit(YAMLNode(.mapping(pairs), line: f.line, column: f.column))
                    } else {
                        emit(YAMLNode(.sequence(f.items), line: f.line, column: f.column))
                    }
                case YAML_ALIAS_EVENT:
                    throw ConfigError(file: file, line: line, "YAML aliases (*name) are not supported")
                default:
                    continue  // stream/document start and end
                }
            }
        }
    }
}
