// Compile-only stub for tests: mirrors the public signature of androidx.core.view.WindowInsetsCompat (getInsets, Type), androidx.core 1.13.
package androidx.core.view;

import androidx.core.graphics.Insets;

public class WindowInsetsCompat {
    public Insets getInsets(int typeMask) { throw new UnsupportedOperationException("stub"); }
    public static final class Type {
        public static int systemBars() { throw new UnsupportedOperationException("stub"); }
        public static int displayCutout() { throw new UnsupportedOperationException("stub"); }
    }
}
