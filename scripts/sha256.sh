# Sourced by the fetch scripts: sha FILE prints the file's SHA-256 (python3's hashlib; sha256sum is
# not on every machine these run on).
sha() { python3 -c 'import hashlib,sys; h=hashlib.sha256(); f=open(sys.argv[1],"rb"); [h.update(b) for b in iter(lambda: f.read(1<<20), b"")]; print(h.hexdigest())' "$1"; }
