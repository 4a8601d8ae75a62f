# No annotation here; the text @nni. in a comment does not make one.
VALUE = '''not an annotation'''
