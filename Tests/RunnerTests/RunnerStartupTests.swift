import Foundation
import Testing
import TestSupport

@Suite struct RunnerStartupTests {
    @Test func runnerRefusesAnUnmigratedDatabase() async throws {
        try await withTestDatabase(migrated: false) { db in
            var env = ProcessInfo.processInfo.environment
            env["DATABASE_URL"] = db.url
            let result = try await runProcess(Executables.path("skipper-runner"), [], environment: env)
            #expect(result.status != 0)
            #expect((result.stdout + result.stderr).contains("run skipper-migrate up"))
        }
    }
}
