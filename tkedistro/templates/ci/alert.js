// alert script: see issue 26
