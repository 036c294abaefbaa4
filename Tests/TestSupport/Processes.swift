import Foundation

/// Paths in the package checkout.
public enum Paths {
    /// The package root, found from this file's place in it.
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    /// migrations/: Skipper's own.
    public static let migrations = root.appendingPathComponent("migrations", isDirectory: true)
    /// migrations/shop/: the demo shop's, with its own history (public.schema_migrations).
    public static let shopMigrations = migrations.appendingPathComponent("shop", isDirectory: true)
}

/// The package's built executables, beside the test binary in .build/<config>/.
public enum Executables {
    public static func path(_ name: String) -> String {
        if let dir = ProcessInfo.processInfo.environment["SKIPPER_BIN_DIR"] { return dir + "/" + name }
        let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return me.deletingLastPathComponent().appendingPathComponent(name).path
    }
}
