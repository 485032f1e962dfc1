package dsgw.tck;

import java.io.FileInputStream;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Properties;

import org.junit.platform.engine.TestExecutionResult;
import org.junit.platform.engine.discovery.DiscoverySelectors;
import org.junit.platform.launcher.TestExecutionListener;
import org.junit.platform.launcher.TestIdentifier;
import org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder;
import org.junit.platform.launcher.core.LauncherFactory;

import static org.junit.platform.engine.discovery.ClassNameFilter.includeClassNamePatterns;

/**
 * Runs the DSP TCK's verification tests with the properties of args[0] and writes one line per
 * test to args[1]: STATUS<TAB>display name<TAB>message. Exits 0 once written (the TCK leaves
 * threads running, so the JVM must be ended explicitly); tests/tck/run.py judges the results.
 */
public final class Runner {
    private Runner() {
    }

    public static void main(String[] args) throws IOException {
        var properties = new Properties();
        try (var in = new FileInputStream(args[0])) {
            properties.load(new java.io.InputStreamReader(in, StandardCharsets.UTF_8));
        }
        properties.stringPropertyNames().forEach(k -> System.setProperty(k, properties.getProperty(k)));
        var out = new PrintWriter(Files.newBufferedWriter(Path.of(args[1]), StandardCharsets.UTF_8), true);
        var request = LauncherDiscoveryRequestBuilder.request()
                .filters(includeClassNamePatterns(".*Test"))

                .selectors(DiscoverySelectors.selectPackage("org.eclipse.dataspacetck.dsp.verification"))
                .build();
        var launcher = LauncherFactory.create();
        launcher.registerTestExecutionListeners(new TestExecutionListener() {
            @Override
            public void executionSkipped(TestIdentifier test, String reason) {
                if (test.isTest()) {
                    write(out, "SKIPPED", test, reason);
                }
            }

            @Override
            public void executionFinished(TestIdentifier test, TestExecutionResult result) {
                if (!test.isTest()) {
                    return;
                }
                var message = result.getThrowable().map(Runner::describe).orElse("");
                var status = switch (result.getStatus()) {
                    case SUCCESSFUL -> "PASSED";
                    case ABORTED -> "SKIPPED";
                    case FAILED -> "FAILED";
                };
                write(out, status, test, message);
            }
        });
        launcher.execute(request);
        out.close();
        System.exit(0);
    }

    /** The error, and for one without a message (a NullPointerException) where it was thrown. */
    private static String describe(Throwable t) {
        var text = t.getClass().getSimpleName() + ": " + t.getMessage();
        if (t.getMessage() == null && t.getStackTrace().length > 0) {
            var frames = java.util.Arrays.stream(t.getStackTrace()).limit(3).map(String::valueOf).toList();
            text += " at " + String.join(" < ", frames);
        }
        return text;
    }

    private static void write(PrintWriter out, String status, TestIdentifier test, String message) {
        var oneLine = message == null ? "" : message.replaceAll("\\s+", " ");
        if (oneLine.length() > 400) {
            oneLine = oneLine.substring(0, 400) + "...";
        }
        out.println(status + "\t" + test.getDisplayName() + "\t" + oneLine);
        System.out.println(status + "  " + test.getDisplayName() + (oneLine.isEmpty() ? "" : "  -- " + oneLine));
    }
}
