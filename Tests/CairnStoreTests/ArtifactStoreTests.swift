import Foundation
import Testing
@testable import CairnStore

@Suite("Adding and checking out artifacts")
struct ArtifactStoreTests {
    @Test func sameContentTwiceGivesOneArtifactAndOneBlobSet() throws {
        let t = TempDir()
        let store = try t.makeStore()
        t.write("d/a.txt", "alpha\n")
        t.write("d/sub/b.txt", "beta\n", executable: true)
        t.write("d/sub/c.txt", "alpha\n")  // same bytes as a.txt: one blob
        let first = try store.add(path: t.sub("d"), kind: .dataset)
        let blobsAfterFirst = blobFiles(store)
        let second = try store.add(path: t.sub("d"), kind: .dataset)
        #expect(first.created)
        #expect(!second.created)
        #expect(first.artifact.id == second.artifact.id)
        #expect(blobFiles(store) == blobsAfterFirst)
        #expect(blobsAfterFirst.count == 3)  // alpha, beta, the manifest
        #expect(try store.artifacts().count == 1)

        // The same tree elsewhere, made by someone else, gets the same id.
        t.write("elsewhere/copy/a.txt", "alpha\n")
        t.write("elsewhere/copy/sub/b.txt", "beta\n", executable: true)
        t.write("elsewhere/copy/sub/c.txt", "alpha\n")
        #expect(try store.identify(path: t.sub("elsewhere/copy")) == first.artifact.id)
        // The executable bit is part of the content.
        t.write("x/a.txt", "alpha\n")
        t.write("x/sub/b.txt", "beta\n")
        t.write("x/sub/c.txt", "alpha\n")
        #expect(try store.identify(path: t.sub("x")) != first.artifact.id)
    }

    @Test func idIsTheHashOfTheCanonicalManifest() throws {
        let t = TempDir()
        let store = try t.makeStore()
        t.write("m/z.bin", "zz")
        t.write("m/a.bin", "a")
        let r = try store.add(path: t.sub("m"), kind: .config)
        let m = try store.manifest(r.artifact.id)
        let expected = "cairn-manifest 1\n" +
            "100644 \(SHA256Hasher.hex(Array("a".utf8))) 1 a.bin\n" +
            "100644 \(SHA256Hasher.hex(Array("zz".utf8))) 2 z.bin\n"
        #expect(m.canonicalText == expected)
        #expect(r.artifact.id.hex == SHA256Hasher.hex(Array(expected.utf8)))
        // Known answer: SHA-256 of "abc" through libcrypto.
        #expect(SHA256Hasher.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func checkoutRestoresBytesAndModes() throws {
        let t = TempDir()
        let store = try t.makeStore()
        let big = pseudoRandomBytes(5 << 20, seed: 7)  // above the small-file threshold: streamed path
        t.writeBytes("model/weights.bin", big)
        t.write("model/config.json", "{\"a\":1}")
        t.write("model/bin/run.sh", "#!/bin/sh\n", executable: true)
        let id = try store.add(path: t.sub("model"), kind: .baseModel).artifact.id
        let files = try store.checkout(id, into: t.sub("out"))
        #expect(files.count == 3)
        #expect(readFile(t.sub("out/model/weights.bin")) == nil)
        #expect(readFile(t.sub("out/weights.bin")) == big)
        #expect(readFile(t.sub("out/config.json")) == Array("{\"a\":1}".utf8))
        #expect(FileManager.default.isExecutableFile(atPath: t.sub("out/bin/run.sh")))
        #expect(!FileManager.default.isExecutableFile(atPath: t.sub("out/config.json")))
        #expect(try store.identify(path: t.sub("out")) == id)
    }

    @Test(arguments: [true, false])
    func largeFilesAreCopiedExactlyWithOrWithoutDirectIO(direct: Bool) throws {
        let t = TempDir()
        let store = try t.makeStore()
        let bytes = pseudoRandomBytes(2 * BlobBatch.directChunk + 12_345, seed: 11)  // two full chunks and a tail
        let path = t.writeBytes("big.bin", bytes)
        let batch = BlobBatch(store: store.blobs, durability: .perFile)
        batch.directIO = direct
        let (hex, size) = try batch.ingest(file: path)
        try batch.commit()
        #expect(hex == SHA256Hasher.hex(bytes))
        #expect(size == Int64(bytes.count))
        #expect(readFile(store.blobs.path(hex)) == bytes)
        // Stored already: the same answer, no second blob, no temp file left behind.
        let again = BlobBatch(store: store.blobs, durability: .batch)
        again.directIO = direct
        #expect(try again.ingest(file: path).hex == hex)
        try again.commit()
        #expect(blobFiles(store) == [hex])
        #expect(try store.scanObjects().temps.isEmpty)
    }

    @Test func singleFileArtifactIsNamedAfterTheFile() throws {
        let t = TempDir()
        let store = try t.makeStore()
        let r = try store.add(path: t.write("data/sft.jsonl", "{\"prompt\":\"a\"}\n"), kind: .dataset)
        #expect(r.artifact.name == "sft.jsonl")
        #expect(r.artifact.fileCount == 1)
        try store.checkout(r.artifact.id, into: t.sub("co"))
        #expect(readFile(t.sub("co/sft.jsonl")) == Array("{\"prompt\":\"a\"}\n".utf8))
    }

    @Test func checkoutRefusesToOverwriteWithoutForce() throws {
        let t = TempDir()
        let store = try t.makeStore()
        let id = try store.add(path: t.write("f/a.txt", "new"), kind: .config).artifact.id
        t.write("out/a.txt", "mine")
        #expect(throws: StoreError.self) { try store.checkout(id, into: t.sub("out")) }
        #expect(readFile(t.sub("out/a.txt")) == Array("mine".utf8))
        try store.checkout(id, into: t.sub("out"), force: true)
        #expect(readFile(t.sub("out/a.txt")) == Array("new".utf8))
    }

    @Test func checkoutNeverFollowsASymlinkOutOfTheDirectory() throws {
        let t = TempDir()
        let store = try t.makeStore()
        t.write("src/sub/x.txt", "payload")
        let id = try store.add(path: t.sub("src"), kind: .dataset).artifact.id
        try FileManager.default.createDirectory(atPath: t.sub("outside"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: t.sub("dest"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: t.sub("dest/sub"), withDestinationPath: t.sub("outside"))
        for force in [false, true] {
            #expect(throws: StoreError.self) { try store.checkout(id, into: t.sub("dest"), force: force) }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: t.sub("outside")).isEmpty)
    }

    @Test func manifestWithDotDotIsRefusedAtCheckout() throws {
        let t = TempDir()
        let store = try t.makeStore()
        // Forge a store entry whose manifest names "../evil": as if the objects were tampered with.
        let payload = Array("evil".utf8)
        let blobHex = SHA256Hasher.hex(payload)
        let text = "cairn-manifest 1\n100644 \(blobHex) 4 ../evil\n"
        let batch = BlobBatch(store: store.blobs, durability: .perFile)
        _ = try batch.ingest(bytes: payload)
        let manifestHex = try batch.ingest(bytes: Array(text.utf8))
        try batch.commit()
        try store.db.run("INSERT INTO artifacts(id, kind, name, size, file_count, created_at, created_by) VALUES(?, 'dataset', 'forged', 4, 1, 0, 'test')",
                         [.text("sha256:" + manifestHex)])
        let id = ArtifactID("sha256:" + manifestHex)!
        try FileManager.default.createDirectory(atPath: t.sub("dest"), withIntermediateDirectories: true)
        #expect(throws: StoreError.self) { try store.checkout(id, into: t.sub("dest")) }
        #expect(!FileManager.default.fileExists(atPath: t.sub("evil")))
        #expect(try fsckErrors(store).contains { $0.kind == .badManifest && $0.artifacts == [id] })
        // Paths are validated wherever they come from.
        for bad in ["../x", "a/../b", "/etc/passwd", "a//b", "./a", "a\nb", ""] {
            #expect(throws: StoreError.self) { try Manifest.validate(path: bad) }
        }
        try Manifest.validate(path: "a/b..c/.hidden")
    }

    @Test func addRefusesSymlinksLeavingTheDirectory() throws {
        let t = TempDir()
        let store = try t.makeStore()
        t.write("secret.txt", "do not take")
        t.write("d/ok.txt", "fine")
        try FileManager.default.createSymbolicLink(atPath: t.sub("d/leak"), withDestinationPath: t.sub("secret.txt"))
        #expect(throws: StoreError.self) { try store.add(path: t.sub("d"), kind: .dataset) }
        #expect(try store.artifacts().isEmpty)
        // A symlink that stays inside is stored as the file it points to.
        try FileManager.default.removeItem(atPath: t.sub("d/leak"))
        try FileManager.default.createSymbolicLink(atPath: t.sub("d/alias.txt"), withDestinationPath: "ok.txt")
        let id = try store.add(path: t.sub("d"), kind: .dataset).artifact.id
        #expect(try store.manifest(id).entries.map(\.path) == ["alias.txt", "ok.txt"])
        #expect(try store.manifest(id).entries[0].blob == SHA256Hasher.hex(Array("fine".utf8)))
    }

    @Test func theStoreIsNeverAddedToItselfAndATopLevelSymlinkIsFollowed() throws {
        let t = TempDir()
        let store = try t.makeStore()  // at t/store
        t.write("notes.txt", "n")
        let whole = try store.add(path: t.path, kind: .dataset)
        #expect(try store.manifest(whole.artifact.id).entries.map(\.path) == ["notes.txt"])
        #expect(throws: StoreError.self) { try store.add(path: t.sub("store"), kind: .dataset) }
        #expect(throws: StoreError.self) { try store.add(path: t.sub("store/objects"), kind: .dataset) }
        try FileManager.default.createSymbolicLink(atPath: t.sub("latest"), withDestinationPath: t.sub("notes.txt"))
        let viaLink = try store.add(path: t.sub("latest"), kind: .dataset)
        #expect(try store.manifest(viaLink.artifact.id).entries.map(\.path) == ["latest"])
        #expect(viaLink.artifact.name == "latest")
    }

    @Test func referencesResolveByIdPrefixAliasAndPath() throws {
        let t = TempDir()
        let store = try t.makeStore()
        let path = t.write("cfg.yaml", "lr: 1\n")
        let id = try store.add(path: path, kind: .config).artifact.id
        #expect(try store.resolve(id.description) == id)
        #expect(try store.resolve(id.hex) == id)
        #expect(try store.resolve(String(id.hex.prefix(8))) == id)
        #expect(try store.resolve("sha256:" + id.hex.prefix(10)) == id)
        #expect(try store.resolve(path) == id)
        try store.setAlias("cfg@prod", to: id)
        #expect(try store.resolve("cfg@prod") == id)
        #expect(throws: StoreError.self) { try store.resolve(String(id.hex.prefix(6))) }
        #expect(throws: StoreError.self) { try store.resolve("nothing-here") }
        #expect(throws: StoreError.self) { try store.resolve(t.write("other.yaml", "lr: 2\n")) }

        // Two ids sharing their first 8 digits: the prefix is ambiguous and the error lists both.
        for suffix in ["0", "1"] {
            try store.db.run("INSERT INTO artifacts(id, kind, name, size, file_count, created_at, created_by) VALUES(?, 'dataset', ?, 0, 0, 0, 't')",
                             [.text("sha256:abcdef01" + String(repeating: suffix, count: 56)), .text("twin" + suffix)])
        }
        do {
            _ = try store.resolve("abcdef01")
            Issue.record("an ambiguous prefix resolved")
        } catch let e as StoreError {
            #expect(e.kind == .ambiguous)
            #expect(e.exitCode == 2)
            #expect(e.message.contains("twin0") && e.message.contains("twin1"))
        }
        #expect(try store.resolve("abcdef011").hex.hasSuffix("1111"))
    }

    @Test func badInputIsABadInputError() throws {
        let t = TempDir()
        let store = try t.makeStore()
        for attempt in [{ _ = try store.add(path: t.sub("missing"), kind: .dataset) },
                        { _ = try ArtifactKind.parse("weights") },
                        { _ = try store.resolve("ffffffffff") }] {
            do { try attempt(); Issue.record("no error") } catch let e as StoreError {
                #expect(e.exitCode == 2, "\(e)")
            }
        }
    }
}
