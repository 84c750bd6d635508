// Compile-only stub for tests: mirrors the public signature of androidx.core.content.ContextCompat, androidx.core 1.13.
package androidx.core.content;

import android.content.Context;
import java.util.concurrent.Executor;

public class ContextCompat {
    public static int checkSelfPermission(Context context, String permission) { throw new UnsupportedOperationException("stub"); }
    public static Executor getMainExecutor(Context context) { throw new UnsupportedOperationException("stub"); }
}
