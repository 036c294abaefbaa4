import Foundation
import Testing
import TestSupport

/// The dashboard (/ui) in a real headless Chromium, driven over W3C WebDriver by Debian's chromedriver, against a real
/// skipper-api (with a token, so the page must ask for it) and a real skipper-test-runner on a fresh database. Every
/// page is photographed to .build/test-output/ui/.
@Suite struct DashboardBrowserTests {
    static let token = "ui-test-token"

    @Test(.timeLimit(.minutes(3)))
    func theDashboardShowsQueuesJobsProgressRunnersAndSchedules() async throws {
        try Browser.requireInstalled()
        let started = ContinuousClock.now
        try await withTestDatabase { db in
            // An hour and a day of per-minute history, as the runners' roll-up would have written it, so the charts
            // have something to draw before this test's own jobs (rolled up from the next minute on) add theirs.
            try await db.query(
                """
                INSERT INTO skipper.stats_minutely (minute, queue, completed, failed, cancelled, latency_p50_ms, latency_p99_ms)
                SELECT date_trunc('minute', now()) - g * interval '1 minute', '',
                       greatest(0, round(70 + 30 * sin(g / 9.0) + 14 * sin(g / 2.3)))::bigint,
                       CASE WHEN g % 17 = 4 THEN 6 WHEN g % 6 = 0 THEN 1 ELSE 0 END,
                       CASE WHEN g % 23 = 7 THEN 2 ELSE 0 END,
                       round((16 + 6 * sin(g / 7.0) + g % 5)::numeric, 3),
                       round((120 + 80 * abs(sin(g / 11.0)) + CASE WHEN g BETWEEN 24 AND 27 THEN 420 ELSE 0 END)::numeric, 3)
                FROM generate_series(2, 1439) g
                """)
            try await db.query(
                "INSERT INTO skipper.stats_rollup (rolled_until) VALUES (date_trunc('minute', now()) - interval '2 minutes')")

            let runner = try ChildProcess.skipper(
                "skipper-test-runner", url: db.url, environment: ["WORKERS": "6", "QUEUES": "default,mail,reports"])
            defer { runner.killNow() }
            let port = freePort()
            let api = try ChildProcess.skipper(
                "skipper-api", url: db.url, environment: ["PORT": "\(port)", "HOST": "127.0.0.1", "API_TOKENS": Self.token])
            defer { api.killNow() }
            let base = "http://127.0.0.1:\(port)"
            try #require(try await eventually(timeout: .seconds(30)) {
                (try? await apiRequest("GET", "\(base)/ready"))?.status == 200
            }, "skipper-api did not become ready: \(api.log.suffix(3000))")
            try #require(try await eventually(timeout: .seconds(30)) {
                try await db.scalar("SELECT count(*) FROM skipper.runners") == "1"
            }, "skipper-test-runner did not register: \(runner.log.suffix(3000))")
            let call = { @Sendable (method: String, path: String, body: String?) async throws -> (status: Int, body: String) in
                try await apiRequest(method, base + path, body, token: Self.token)
            }

            // Something to show: finished jobs in two queues, retried and failed attempts, a paused queue with
            // waiting jobs, limits, and schedules.
            #expect(try await call("PATCH", "/queues/mail", #"{"concurrency": 2, "rate": {"limit": 120, "period": "1m"}}"#).status == 200)
            #expect(try await call("POST", "/queues/reports/pause", nil).status == 200)
            for _ in 0..<8 { #expect(try await call("POST", "/jobs", #"{"kind": "noop", "queue": "mail"}"#).status == 202) }
            for _ in 0..<5 { #expect(try await call("POST", "/jobs", #"{"kind": "sleep", "args": {"ms": 50}}"#).status == 202) }
            let flaky = try await call(
                "POST", "/jobs", #"{"kind": "fail", "args": {"message": "card network timeout", "times": 2, "retry_ms": 200}, "max_attempts": 3}"#)
            let flakyID = try #require(field("job_id", in: flaky.body) as? Int, "\(flaky.body)")
            #expect(try await call("POST", "/jobs", #"{"kind": "fail", "args": {"message": "failed on purpose"}, "max_attempts": 1}"#).status == 202)
            // Waiting in the paused queue: four that the bulk cancel below selects by their arguments, two it leaves.
            for ms in [1234, 1234, 999, 1234, 999, 1234] {
                #expect(try await call("POST", "/jobs", #"{"kind": "sleep", "queue": "reports", "args": {"ms": \#(ms)}}"#).status == 202)
            }
            #expect(try await call("POST", "/schedules", #"{"name": "report-hourly", "cron": "0 * * * *", "kind": "noop", "timezone": "Europe/Berlin"}"#).status == 201)
            #expect(try await call("POST", "/schedules", #"{"name": "ping", "cron": "@every 5s", "kind": "noop"}"#).status == 201)
            #expect(try await eventually(timeout: .seconds(20)) {
                try await db.scalar("SELECT status FROM skipper.jobs WHERE id = \(flakyID)") == "COMPLETED"
            }, "\(runner.log)")

            let driver = try await ChromeDriver()
            var session: WebDriverSession?
            do {
                let browser = try await driver.session()
                session = browser
                try await Self.walk(browser, base: base, db: db, call: call)
            } catch {
                if let session { try? await session.save("failure") }
                await session?.quit()
                await driver.stop()
                throw error
            }
            await session?.quit()
            await driver.stop()
            #expect(!api.log.contains("request failed"), "\(api.log.suffix(3000))")
        }
        print("BrowserTests: the dashboard walk took \(ContinuousClock.now - started); screenshots in .build/test-output/ui/")
    }

    /// The pages, in the order a person would look at them.
    static func walk(
        _ browser: WebDriverSession, base: String, db: TestDatabase,
        call: @Sendable (String, String, String?) async throws -> (status: Int, body: String)
    ) async throws {
        // The page opens without a token, meets the API's 401 and asks for one; given, it is used from then on.
        try await browser.open("\(base)/ui")
        try await browser.wait("the token form", "return !document.querySelector('#token-panel').hidden")
        try await browser.save("token")
        try await browser.type("[data-test=token-input]", Self.token)
        try await browser.click("[data-test=token-submit]")

        // Overview: each queue's counts as the API has them, the paused queue, and charts drawn from /stats.
        try await browser.wait("the overview's queues", "return document.querySelectorAll('[data-test=queue-row]').length === 3")
        try await browser.wait(
            "the paused queue's waiting jobs",
            """
            const row = document.querySelector('[data-test=queue-row][data-queue=reports]');
            return !!row && row.querySelector('[data-test=count-QUEUED]').textContent === '6' && !!row.querySelector('[data-test=queue-paused]');
            """)
        try await browser.wait(
            "the finished jobs of queue mail",
            "return document.querySelector('[data-test=queue-row][data-queue=mail] [data-test=count-COMPLETED]').textContent === '8'")
        let mailLimits = try await browser.js("return document.querySelector('[data-test=queue-row][data-queue=mail] [data-test=limits]').textContent")
        #expect(mailLimits?.contains("≤ 2 running") == true && mailLimits?.contains("120 starts / 1 min") == true, "\(mailLimits ?? "nil")")
        let stats = try await call("GET", "/stats?window=1h", nil)
        let minutes = (field("minutes", in: stats.body) as? [Any])?.count ?? 0
        #expect(minutes >= 55, "\(stats.body.prefix(500))")
        try await browser.wait(
            "the throughput chart", "return Number(document.querySelector('[data-test=chart-throughput]').dataset.points) >= 55")
        try await browser.wait(
            "the latency chart", "return Number(document.querySelector('[data-test=chart-latency]').dataset.points) >= 55")
        // Chart.js drew on the canvas: some pixel is not blank.
        try await browser.wait(
            "pixels on the chart",
            """
            const c = document.querySelector('[data-test=chart-throughput]');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) return true;
            return false;
            """)
        // The pause button of a queue works from the page.
        try await browser.click("[data-test=queue-row][data-queue=default] [data-test=queue-pause]")
        #expect(try await eventually(timeout: .seconds(5)) {
            try await db.scalar("SELECT paused FROM skipper.queues WHERE name = 'default'") == "true"
        })
        try await browser.wait("default paused", "return !!document.querySelector('[data-test=queue-row][data-queue=default] [data-test=queue-resume]')")
        try await browser.click("[data-test=queue-row][data-queue=default] [data-test=queue-resume]")
        try await browser.wait("default resumed", "return !!document.querySelector('[data-test=queue-row][data-queue=default] [data-test=queue-pause]')")
        #expect(try await db.scalar("SELECT paused FROM skipper.queues WHERE name = 'default'") == "false")
        try await browser.js("window.scrollTo(0, 0)")
        try await browser.save("overview")
        try await browser.click("[data-test=window-24h]")
        try await browser.wait(
            "the day's charts",
            "return document.querySelector('[data-test=window-24h]').classList.contains('active') && Number(document.querySelector('[data-test=chart-throughput]').dataset.points) > 1000")
        try await browser.save("overview-24h")

        // Jobs: a submitted sleep job appears in the list; its page follows it live to COMPLETED.
        let sleeper = try await call("POST", "/jobs", #"{"kind": "sleep", "args": {"ms": 4000}}"#)
        let sleeperID = try #require(field("job_id", in: sleeper.body) as? Int, "\(sleeper.body)")
        try await browser.click("[data-test=nav-jobs]")
        try await browser.wait("job \(sleeperID) in the list", "return !!document.querySelector('[data-test=job-row][data-job-id=\"\(sleeperID)\"]')")
        let first = try await browser.js("return document.querySelector('[data-test=job-row]').dataset.jobId")
        #expect(first == "\(sleeperID)", "newest first")
        try await browser.save("jobs")
        try await browser.click("[data-test=job-row][data-job-id=\"\(sleeperID)\"] [data-test=job-link]")
        let progress = "const p = document.querySelector('[data-test=progress]'); return p ? p.getAttribute('aria-valuenow') : null"
        let before = try await browser.waitForValue("progress under way", timeout: .seconds(10), progress) { (Double($0) ?? 0) > 0 && (Double($0) ?? 0) < 100 }
        let later = try await browser.waitForValue("progress advancing", timeout: .seconds(10), progress) {
            (Double($0) ?? 0) > (Double(before) ?? 0)
        }
        #expect((Double(later) ?? 0) > (Double(before) ?? 0), "aria-valuenow \(before) then \(later)")
        let status = try await browser.js("return document.querySelector('[data-test=job-status]').textContent")
        #expect(status == "RUNNING")
        try await browser.save("job-running")
        try await browser.wait(
            "COMPLETED at 100 %", timeout: .seconds(15),
            """
            return document.querySelector('[data-test=job-status]').textContent === 'COMPLETED'
              && document.querySelector('[data-test=progress]').getAttribute('aria-valuenow') === '100'
            """)
        let result = try await browser.js("return document.querySelector('[data-test=job-result]').textContent")
        #expect(result?.contains("\"slept_ms\": 4000") == true, "\(result ?? "nil")")
        try await browser.save("job-completed")

        // A job's failed attempts, with the runner that ran each.
        let flaky = try #require(try await db.scalar("SELECT id FROM skipper.jobs WHERE kind = 'fail' AND max_attempts = 3"))
        try await browser.open("\(base)/ui#/jobs/\(flaky)")
        try await browser.wait("two failed attempts", "return document.querySelectorAll('[data-test=job-error]').length === 2")
        let errorText = try await browser.js("return document.querySelector('[data-test=job-errors]').textContent")
        #expect(errorText?.contains("card network timeout") == true, "\(errorText ?? "nil")")
        try await browser.save("job-errors")

        // Cancel from the page: a running long sleep becomes CANCELLED.
        let long = try await call("POST", "/jobs", #"{"kind": "sleep", "args": {"ms": 60000}}"#)
        let longID = try #require(field("job_id", in: long.body) as? Int, "\(long.body)")
        try await browser.open("\(base)/ui#/jobs/\(longID)")
        try await browser.wait("job \(longID) running", "return document.querySelector('[data-test=job-status]')?.textContent === 'RUNNING'")
        let runnerID = try #require(try await db.scalar("SELECT id FROM skipper.runners"))
        try await browser.click("[data-test=cancel-job]")
        try await browser.wait("the cancel confirmation", "return !document.querySelector('[data-test=cancel-confirm]').hidden")
        try await browser.click("[data-test=confirm-cancel-job]")
        try await browser.wait("CANCELLED", timeout: .seconds(10), "return document.querySelector('[data-test=job-status]').textContent === 'CANCELLED'")
        #expect(try await db.scalar("SELECT status FROM skipper.jobs WHERE id = \(longID)") == "CANCELLED")
        try await browser.save("job-cancelled")

        // Bulk cancel of what a filter selects (queue and arguments), confirmed in the page.
        try await browser.open("\(base)/ui#/jobs")
        try await browser.wait("the filter form", "return !!document.querySelector('[data-test=filter-queue]')")
        try await browser.type("[data-test=filter-queue]", "reports")
        try await browser.type("[data-test=filter-args]", #"{"ms": 1234}"#)
        try await browser.click("[data-test=filter-apply]")
        try await browser.wait(
            "the filtered list",
            "return location.hash.includes('queue=reports') && document.querySelectorAll('[data-test=job-row]').length === 4")
        try await browser.click("[data-test=bulk-cancel]")
        try await browser.wait("the bulk confirmation", "return !document.querySelector('[data-test=bulk-confirm]').hidden")
        let stated = try await browser.js("return document.querySelector('[data-test=bulk-filter]').textContent")
        #expect(stated?.contains("queue is reports") == true && stated?.contains(#"arguments contain {"ms":1234}"#) == true, "\(stated ?? "nil")")
        try await browser.save("jobs-bulk-confirm")
        try await browser.click("[data-test=bulk-confirm-yes]")
        try await browser.wait("the bulk total", "return document.querySelector('[data-test=bulk-result]').dataset.count === '4'")
        #expect(try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE queue = 'reports' AND status = 'CANCELLED'") == "4")
        #expect(try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE queue = 'reports' AND status = 'QUEUED'") == "2")
        try await browser.wait(
            "the list after the cancel",
            "return [...document.querySelectorAll('[data-test=job-row]')].every((r) => r.dataset.status === 'CANCELLED')")
        try await browser.save("jobs-bulk-done")

        // An error of the API is shown in the page, never a blank one.
        try await browser.open("\(base)/ui#/jobs/999999999")
        try await browser.wait(
            "the NOT_FOUND message", "return [...document.querySelectorAll('[data-test=error]')].some((e) => !e.hidden && e.textContent.includes('NOT_FOUND'))")

        // Runners: the one runner, live, with its queues.
        try await browser.open("\(base)/ui#/runners")
        try await browser.wait("the runner", "return !!document.querySelector('[data-test=runner-row][data-runner-id=\"\(runnerID)\"]')")
        let row = try await browser.js("return document.querySelector('[data-test=runner-row]').textContent")
        #expect(row?.contains("reports") == true && row?.contains("sleep") == true, "\(row ?? "nil")")
        #expect(try await browser.js("return document.querySelector('[data-test=runner-row]').dataset.stale") == "false")
        try await browser.save("runners")

        // Schedules: both, the fast one with a last job that links to it.
        try await browser.open("\(base)/ui#/schedules")
        try await browser.wait(
            "the schedules",
            "return !!document.querySelector('[data-test=schedule-row][data-schedule=report-hourly]') && !!document.querySelector('[data-test=schedule-row][data-schedule=ping]')")
        try await browser.wait(
            "the last job of ping", timeout: .seconds(15),
            "return !!document.querySelector('[data-test=schedule-row][data-schedule=ping] [data-test=schedule-last-job]')")
        try await browser.click("[data-test=schedule-row][data-schedule=ping] [data-test=schedule-pause]")
        try await browser.wait("ping paused", "return !!document.querySelector('[data-test=schedule-row][data-schedule=ping] [data-test=schedule-paused]')")
        #expect(try await db.scalar("SELECT paused FROM skipper.schedules WHERE name = 'ping'") == "true")
        try await browser.save("schedules")

        // Back to the overview for the picture of everything after the walk.
        try await browser.open("\(base)/ui#/")
        try await browser.wait("the overview again", "return document.querySelectorAll('[data-test=queue-row]').length === 3")
        try await browser.wait(
            "the charts again", "return Number(document.querySelector('[data-test=chart-throughput]').dataset.points) >= 55")
        try await browser.save("overview-after")
    }
}
