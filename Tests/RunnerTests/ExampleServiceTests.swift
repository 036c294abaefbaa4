import Foundation
import Testing
import TestSupport

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The example application (Examples/ReceiptService: Skipper as a library, with the app's own table, job kind,
/// runner and migrations in one ServiceGroup) against an empty database, as its README section promises.
@Suite struct ExampleServiceTests {
    @Test func theExampleServiceRunsItsOwnKindEndToEnd() async throws {
        try await withTestDatabase(migrated: false) { db in
            let port = freePort()
            let service = try ChildProcess.skipper("skipper-example", url: db.url, environment: ["PORT": "\(port)"])
            defer { service.killNow() }
            let base = "http://127.0.0.1:\(port)"
            #expect(try await eventually(timeout: .seconds(30)) { (try? await http("GET", "\(base)/health").status) == 200 }, "\(service.log)")

            // The receipt and its job commit together; the request awaits the job's typed result.
            let created = try await http("POST", "\(base)/receipts", #"{"customer": "ana", "amountCents": 1250}"#)
            #expect(created.status == 200, "\(created.body)\n\(service.log)")
            let jobID = try #require(number("jobID", in: created.body))
            let rendered = try await http("GET", "\(base)/jobs/\(jobID)/result", timeout: 20)
            #expect(rendered.body.contains("Receipt 1 for ana: 12.50"), "\(rendered.body)\n\(service.log)")
            #expect(try await db.scalar("SELECT rendered_at IS NOT NULL FROM receipts WHERE id = 1") == "true")
            #expect(try await db.scalar("SELECT status FROM skipper.jobs WHERE id = \(jobID)") == "COMPLETED")

            // A receipt the table refuses takes its job with it: nothing is enqueued.
            let refused = try await http("POST", "\(base)/receipts", #"{"customer": "bo", "amountCents": -1}"#)
            #expect(refused.status == 422, "\(refused.body)")
            #expect(try await db.scalar("SELECT count(*) FROM skipper.jobs") == "1")
            #expect(try await db.scalar("SELECT count(*) FROM receipts") == "1")

            // Skipper's own history, beside the app's table, and a graceful stop.
            #expect(try await db.scalar("SELECT version FROM skipper.schema_migrations") != nil)
            service.signal(SIGTERM)
            #expect(await service.waitForExit(timeout: .seconds(15)) == 0, "\(service.log)")
            #expect(try await db.scalar("SELECT count(*) FROM skipper.runners") == "0")
        }
    }

    /// The README's "Use Skipper in your service" shows the example as it is.
    @Test func theReadmeShowsTheExampleAsItIs() throws {
        let example = try String(contentsOf: Paths.root.appendingPathComponent("Examples/ReceiptService/ReceiptService.swift"), encoding: .utf8)
        let readme = try String(contentsOf: Paths.root.appendingPathComponent("README.md"), encoding: .utf8)
        #expect(readme.contains("```swift\n" + example + "```"), "copy Examples/ReceiptService/ReceiptService.swift into the README")
    }


}
