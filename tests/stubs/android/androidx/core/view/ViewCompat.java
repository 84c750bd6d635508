// Compile-only stub for tests: mirrors the public signature of androidx.core.view.ViewCompat (setOnApplyWindowInsetsListener), androidx.core 1.13.
package androidx.core.view;

import android.view.View;

public class ViewCompat {
    public static void setOnApplyWindowInsetsListener(View v, OnApplyWindowInsetsListener listener) {
        throw new UnsupportedOperationException("stub");
    }
}
